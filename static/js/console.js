// Small behaviours of the console that htmx does not cover.
(function () {
  "use strict";

  // Copy the text of the element named by data-copy-target to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = (source.value !== undefined ? source.value : source.textContent).trim();
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      setTimeout(function () {
        button.textContent = label;
      }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {
        selectText(source);
      });
    } else {
      selectText(source);
    }
  });

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // Ask before a form marked data-confirm is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Open and close the collapsed sidebar on narrow screens (menu button, Escape, a click outside).
  function navSet(open) {
    document.body.classList.toggle("nav-open", open);
    var toggle = document.querySelector("[data-nav-toggle]");
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-nav-toggle]")) {
      navSet(!document.body.classList.contains("nav-open"));
    } else if (document.body.classList.contains("nav-open") && !event.target.closest("#sidenav")) {
      navSet(false);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") navSet(false);
  });

  // Submit a form as soon as one of its [data-autosubmit] controls changes.
  document.addEventListener("change", function (event) {
    var control = event.target.closest("[data-autosubmit]");
    if (control && control.form) {
      control.form.requestSubmit();
    }
  });
})();
