// Draws the plotly figures of a page: each `div[data-plotly-figure]` names the JSON element
// that holds its figure (see gatehouse/charts.py). Runs on load and on every htmx swap, so the
// Content-Security-Policy needs no inline script.
(function () {
  "use strict";

  function draw(root) {
    if (!window.Plotly || !root.querySelectorAll) return;
    var divs = root.querySelectorAll("div[data-plotly-figure]");
    if (root.matches && root.matches("div[data-plotly-figure]")) divs = [root].concat(Array.prototype.slice.call(divs));
    Array.prototype.forEach.call(divs, function (div) {
      var source = document.getElementById(div.getAttribute("data-plotly-figure"));
      if (!source || div.getAttribute("data-plotly-drawn") === source.textContent.length + "") return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(div, figure.data, figure.layout, figure.config);
      div.setAttribute("data-plotly-drawn", source.textContent.length + "");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      draw(document);
    });
  } else {
    draw(document);
  }
  document.addEventListener("htmx:load", function (event) {
    draw(event.target);
  });
})();
