// The status page's "Copy" buttons: the record's name or value to the clipboard, said on
// the button and announced by the page's live region (#copy-status). The words come from
// the page (json_script), in its language.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");
  if (!status) return;
  function text(id) { return JSON.parse(document.getElementById(id).textContent); }
  var copied = text("text-copied");
  var copy = text("text-copy");
  var copiedValue = text("text-copied-value");
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        button.textContent = copied;
        // Emptied first, so that copying the same text twice is announced twice.
        status.textContent = "";
        setTimeout(function () {
          status.textContent = copiedValue.replace("{value}", button.dataset.copy);
        }, 100);
        setTimeout(function () { button.textContent = copy; }, 1500);
      });
    });
  });
})();
