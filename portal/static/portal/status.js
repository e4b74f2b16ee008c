// The status page's "Copy" buttons: the record's name or value to the clipboard. The
// words come from the page (json_script), in its language.
(function () {
  "use strict";
  var copiedText = document.getElementById("text-copied");
  if (!copiedText) return;
  var copied = JSON.parse(copiedText.textContent);
  var copy = JSON.parse(document.getElementById("text-copy").textContent);
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        button.textContent = copied;
        setTimeout(function () { button.textContent = copy; }, 1500);
      });
    });
  });
})();
