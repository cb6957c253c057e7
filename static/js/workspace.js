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
    box.appendChild(element("div", "ws-who", "You"));
    box.appendChild(element("div", "ws-body ws-plain", text));
    thread.appendChild(box);
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
    box.appendChild(element("div", "ws-who", modelName));
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
    if (event.citations && event.citations.length) {
      var list = element("ol", "ws-citations small");
      event.citations.forEach(function (c) {
        var item = element("li", "", c.document + ", part " + (c.ordinal + 1));
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

  function busy(on) {
    sendButton.disabled = on;
    regenerateButton.disabled = on;
    stopButton.hidden = !on;
  }

  async function send(regenerate) {
    var text = content.value.trim();
    if (!regenerate && !text) {
      statusLine.textContent = "Write a message first.";
      return;
    }
    var data = new FormData();
    data.append("content", regenerate ? "" : text);
    data.append("model", model.value);
    if (regenerate) data.append("regenerate", "1");
    clearEmpty();
    if (regenerate) dropLastAnswer();
    else userBubble(text);
    content.value = "";
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
