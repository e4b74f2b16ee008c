// Progressive enhancement of the setup form: the validation addresses and the webmail
// preview follow the domain as it is typed, and DNS Assist is offered only for the
// account's zones. The server checks everything again; without JavaScript the form works.
(function () {
  "use strict";
  var form = document.getElementById("setup-form");
  if (!form) return;
  var domain = form.querySelector("[name=domain]");
  var subdomain = form.querySelector("[name=subdomain]");
  var email = form.querySelector("[name=validation_email]");
  var assist = form.querySelector("[name=dns_assist]");
  var hint = document.getElementById("dns-assist-hint");
  var preview = document.getElementById("webmail-preview");
  var zones = (form.dataset.zones || "").split(" ").filter(Boolean);
  var unmanagedText = form.dataset.textUnmanaged || "";

  function typedDomain() {
    return domain.value.trim().toLowerCase().replace(/\.$/, "");
  }

  function asciiName(name) {
    // The browser's URL parser gives the A-label form of an internationalised name.
    try { return new URL("http://" + name).hostname; } catch (e) { return name; }
  }

  function managed(name) {
    var ascii = asciiName(name);
    return zones.some(function (zone) { return ascii === zone || ascii.endsWith("." + zone); });
  }

  // The hint explains why DNS Assist cannot be ticked: screen readers read it with the box.
  function describeAssist(withHint) {
    var ids = (assist.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== hint.id;
    });
    if (withHint) ids.push(hint.id);
    assist.setAttribute("aria-describedby", ids.join(" "));
  }

  function update() {
    var name = typedDomain();
    var shown = name || "…";
    Array.prototype.forEach.call(email.options, function (option) {
      option.textContent = option.value + "@" + shown;
    });
    preview.textContent = "https://" + subdomain.value + "." + shown + "/owa";
    if (!assist) return;
    var allowed = name !== "" && managed(name);
    assist.disabled = !allowed;
    if (!allowed) assist.checked = false;
    hint.hidden = allowed || name === "";
    hint.textContent = hint.hidden ? "" : unmanagedText.replace("{domain}", name);
    describeAssist(!hint.hidden);
  }

  domain.addEventListener("input", update);
  subdomain.addEventListener("change", update);
  update();
  var summary = document.getElementById("error-summary");
  if (summary && document.activeElement !== summary) summary.focus();
})();
