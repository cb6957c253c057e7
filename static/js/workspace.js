// The workspace thread: send a turn, read its server-sent events as they arrive, stop it.
(function () {
  "use strict";

  var form = document.getElementById("ws-composer");
  if (!form) return;
  var thread = document.getElementById("ws-thread");
  var content = document.getElementById("ws-content");
  var model = document.getElementById("ws-model");
  var sendButton = document.getElementById("ws-send");
  var stopButton = document.getElementById("ws-stop");
  var regenerateButton = document.getElementById("ws-regenerate");
  var statusLine = document.getElementById("ws-status");
  var editField = document.getElementById("ws-edit");
  var attachmentInput = document.getElementById("ws-attachment");
  var suggestion = document.getElementById("ws-suggestion");
  var controller = null;

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clearEmpty() {
    var empty = document.getElementById("ws-empty");
    if (empty) empty.remove();
  }

  function userBubble(text) {
    var box = element("div", "ws-msg ws-user");
    box.dataset.kind = "user";
    var who = element("div", "ws-who", "You ");
    var edit = element("button", "btn btn-sm btn-link ws-edit", "Edit");
    edit.type = "button";
    edit.title = "Edit and resend from here";
    who.appendChild(edit);
    box.appendChild(who);
    box.appendChild(element("div", "ws-body ws-plain", text));
    thread.appendChild(box);
    return box;
  }

  function noteBubble(kind, text) {
    var box = element("div", "ws-msg ws-" + kind);
    box.dataset.kind = kind;
    box.setAttribute("role", kind === "refusal" ? "alert" : "note");
    if (kind === "refusal") box.appendChild(element("strong", "", "Refused. "));
    box.appendChild(document.createTextNode(text));
    thread.appendChild(box);
  }

  function answerBubble(modelName) {
    var box = element("div", "ws-msg ws-answer ws-streaming");
    box.dataset.kind = "answer";
    var who = element("div", "ws-who", modelName + " ");
    var copy = element("button", "btn btn-sm btn-link ws-copy", "Copy");
    copy.type = "button";
    copy.title = "Copy the answer as Markdown";
    who.appendChild(copy);
    box.appendChild(who);
    var body = element("div", "ws-body ws-plain");
    box.appendChild(body);
    thread.appendChild(box);
    return box;
  }

  function finishAnswer(box, event) {
    box = box || answerBubble(event.model);
    box.classList.remove("ws-streaming");
    var body = box.querySelector(".ws-body");
    body.className = "ws-body ws-markdown";
    body.innerHTML = event.html; // rendered and cleaned by the server (no raw HTML from the model)
    box.dataset.id = event.id;
    box.dataset.source = event.content;
    if (event.citations && event.citations.length) {
      var list = element("ol", "ws-citations small");
      event.citations.forEach(function (c) {
        var item = element("li");
        var label = c.document + ", part " + (c.ordinal + 1);
        if (c.chunk) {
          var link = element("a", "", label);
          link.href = form.dataset.passageUrl.replace("0", String(c.chunk));
          item.appendChild(link);
        } else {
          item.textContent = label;
        }
        item.value = c.n;
        item.title = c.excerpt;
        list.appendChild(item);
      });
      box.appendChild(list);
    }
    var meta = element("div", "ws-meta muted small");
    meta.appendChild(
      document.createTextNode(
        event.model + " · " + event.deployment + " · " + event.prompt_tokens + " + " + event.completion_tokens + " tokens · "
      )
    );
    meta.appendChild(element("span", "ws-cost", "$" + event.cost));
    if (event.ttft_ms !== null && event.ttft_ms !== undefined) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(element("span", "ws-ttft", "TTFT " + event.ttft_ms + " ms"));
    }
    if (event.stopped) meta.appendChild(document.createTextNode(" · stopped"));
    box.appendChild(meta);
  }

  function dropLastAnswer() {
    var items = thread.querySelectorAll(".ws-msg");
    for (var i = items.length - 1; i >= 0; i--) {
      if (items[i].dataset.kind === "user") break;
      items[i].remove();
    }
  }

  function dropFrom(id) {
    var items = thread.querySelectorAll(".ws-msg");
    var found = false;
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.id === id) found = true;
      if (found) items[i].remove();
    }
  }

  thread.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    var box = button.closest(".ws-msg");
    if (button.classList.contains("ws-edit") && box.dataset.id) {
      content.value = box.querySelector(".ws-body").textContent;
      editField.value = box.dataset.id;
      statusLine.textContent = "Editing: sending resends from this question; the answers after it leave the thread.";
      content.focus();
    } else if (button.classList.contains("ws-copy")) {
      var text = box.dataset.source || box.querySelector(".ws-body").textContent;
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(
          function () { statusLine.textContent = "Answer copied."; },
          function () { statusLine.textContent = "The browser refused the copy."; }
        );
      }
    }
  });
  if (suggestion) {
    document.getElementById("ws-suggestion-dismiss").addEventListener("click", function () {
      suggestion.hidden = true;
    });
  }

  function busy(on) {
    sendButton.disabled = on;
    regenerateButton.disabled = on;
    stopButton.hidden = !on;
  }

  async function send(regenerate) {
    var text = content.value.trim();
    var attached = !regenerate && attachmentInput && attachmentInput.files.length ? attachmentInput.files[0] : null;
    if (!regenerate && !text && !attached) {
      statusLine.textContent = "Write a message first.";
      return;
    }
    var data = new FormData();
    data.append("content", regenerate ? "" : text);
    data.append("model", model.value);
    if (regenerate) data.append("regenerate", "1");
    var editing = !regenerate && editField.value ? editField.value : "";
    if (editing) data.append("edit", editing);
    if (attached) data.append("attachment", attached);
    clearEmpty();
    if (editing) dropFrom(editing);
    editField.value = "";
    if (regenerate) dropLastAnswer();
    var asked = regenerate ? null : userBubble(text + (attached ? "\n\n(attached: " + attached.name + ")" : ""));
    content.value = "";
    if (attachmentInput) attachmentInput.value = "";
    statusLine.textContent = "Waiting for the model…";
    controller = new AbortController();
    busy(true);
    var box = null;
    try {
      var response = await fetch(form.dataset.streamUrl, {
        method: "POST",
        body: data,
        headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        statusLine.textContent = "The message could not be sent (" + response.status + ").";
        return;
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      for (;;) {
        var part = await reader.read();
        if (part.done) break;
        buffer += decoder.decode(part.value, { stream: true });
        var frames = buffer.split("\n\n");
        buffer = frames.pop();
        frames.forEach(function (frame) {
          if (frame.indexOf("data: ") !== 0) return;
          var event = JSON.parse(frame.slice(6));
          if (event.type === "start") {
            statusLine.textContent = "Answering with " + event.model + "…";
            box = answerBubble(event.model);
          } else if (event.type === "delta") {
            box.querySelector(".ws-body").textContent += event.text;
          } else if (event.type === "answer") {
            finishAnswer(box, event);
            box = null;
          } else if (event.type === "switch") {
            thread.insertBefore(element("div", "ws-msg ws-switch", event.content), box);
          } else if (event.type === "asked") {
            if (asked) {
              asked.dataset.id = event.id;
              asked.querySelector(".ws-body").textContent = event.content;
            }
          } else if (event.type === "remembered") {
            thread.appendChild(element("div", "ws-msg ws-remembered small", "Saved to your memory: " + event.content));
          } else if (event.type === "suggestion") {
            document.getElementById("ws-suggestion-text").textContent = event.content;
            document.getElementById("ws-suggestion-input").value = event.content;
            suggestion.hidden = false;
          } else if (event.type === "refusal") {
            if (box) box.remove();
            box = null;
            noteBubble("refusal", event.content);
          } else if (event.type === "total") {
            document.getElementById("ws-total-cost").textContent = "$" + event.cost;
            document.getElementById("ws-total-tokens").textContent = event.tokens;
            if (!model.disabled) model.value = event.model;
            statusLine.textContent = "";
          } else if (event.type === "error") {
            statusLine.textContent = event.content;
            if (asked && !asked.dataset.id) asked.remove();
          }
        });
      }
    } catch (error) {
      if (error.name === "AbortError") {
        if (box) box.classList.remove("ws-streaming");
        statusLine.textContent = "Stopped. What was answered so far is kept.";
      } else {
        statusLine.textContent = "The connection failed: " + error.message;
      }
    } finally {
      controller = null;
      busy(false);
      thread.lastElementChild && thread.lastElementChild.scrollIntoView({ block: "end" });
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(event.submitter === regenerateButton);
  });
  content.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send(false);
    }
  });
  stopButton.addEventListener("click", function () {
    if (controller) controller.abort();
  });
  model.addEventListener("change", function () {
    statusLine.textContent = "Your next message goes to " + model.value + ".";
  });
})();
