// The validation page's "Close window". Browsers only let a script close a window a script
// opened: when window.close() is refused, the page is still there a moment later, and goes
// back to the customer space. Without JavaScript the button could do nothing: it stays
// hidden, and the link beside it remains.
(function () {
  "use strict";
  var closeButton = document.getElementById("close-window");
  if (!closeButton) return;
  closeButton.hidden = false;
  closeButton.addEventListener("click", function () {
    var fallback = closeButton.dataset.fallback;
    window.close();
    setTimeout(function () { window.location.href = fallback; }, 300);
  });
})();
