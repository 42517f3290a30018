// The panel's only script: progressive enhancement. Every page works without it.
(function () {
  "use strict";
  var body = document.body;

  // 1. Dates in the browser's time zone, once per browser session, unless the visitor chose one
  //    (the profile's "Zona horaria" form keeps working as before).
  //    The page is drawn again only if it shows times, and not once the visitor has typed: a
  //    reload would wipe what the login form (or any other) holds.
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (body.dataset.zoneChosen === "no" && zone && zone !== body.dataset.zone &&
      !sessionStorage.getItem("panel-zone-tried")) {
    sessionStorage.setItem("panel-zone-tried", "1");
    var typed = false;
    document.addEventListener("input", function () { typed = true; });
    var form = new URLSearchParams();
    form.set("csrf_token", body.dataset.csrf);
    form.set("time_zone", zone);
    form.set("next", "/");
    fetch("/time-zone", {method: "POST", body: form, credentials: "same-origin", redirect: "manual"})
      .then(function () {
        if (!typed && document.querySelector("time")) { location.reload(); }
      });
  }

  // 2. Text being typed survives a change of language or a reload: kept in this tab until its
  //    form is sent.
  var key = function (area) { return "panel-draft:" + location.pathname + "#" + area.id; };
  document.querySelectorAll("textarea[id]").forEach(function (area) {
    var draft = sessionStorage.getItem(key(area));
    if (draft && !area.value) { area.value = draft; }
    area.addEventListener("input", function () { sessionStorage.setItem(key(area), area.value); });
    if (area.form) {
      area.form.addEventListener("submit", function () { sessionStorage.removeItem(key(area)); });
    }
  });
})();
