// The remediation request page (remediation/request.html): live device count and due-date toggle.
(function () {
  "use strict";
  var form = document.getElementById("remediation-form");
  var token = form.querySelector("input[name=csrf_token]").value;
  var due = document.getElementById("due_on");
  var note = document.getElementById("attention-note");
  function q(id) { return document.querySelector('[data-testid="' + id + '"]'); }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function chosenGroups() {
    var mode = form.querySelector("input[name=groups_mode]:checked");
    if (!mode || mode.value === "all") { return null; }
    return Array.prototype.map.call(form.querySelectorAll("input[name=group]:checked"), function (el) { return parseInt(el.value, 10); });
  }
  var pending = 0;
  function refresh() {
    var ids = chosenGroups();
    var statusLine = q("preview-status");
    if (ids !== null && ids.length === 0) {
      q("preview-devices").textContent = "0"; q("preview-intune").textContent = "0";
      q("preview-message").hidden = true;
      statusLine.textContent = "Choose at least one device group.";
      return;
    }
    var ticket = ++pending;
    statusLine.textContent = "Counting…";
    fetch("/api/v1/remediation-activities/preview", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify({ recommendation_id: form.dataset.recommendation, device_group_ids: ids })
    }).then(function (reply) {
      if (ticket !== pending) { return; }
      if (!reply.ok) { statusLine.textContent = "The count could not be updated; use Preview."; return; }
      return reply.json().then(function (data) {
        q("preview-devices").textContent = fmt(data.devices_in_scope);
        q("preview-intune").textContent = fmt(data.intune_eligible_devices);
        var message = q("preview-message");
        message.textContent = data.message; message.hidden = !data.message;
        statusLine.textContent = "";
      });
    }).catch(function () { statusLine.textContent = "The count could not be updated; use Preview."; });
  }
  function syncDue() {
    var chosen = form.querySelector("input[name=remediation_type]:checked");
    var attention = !!chosen && chosen.value === "AttentionRequired";
    due.disabled = attention;
    note.hidden = !attention;
  }
  form.addEventListener("change", function (event) {
    var name = event.target.name;
    if (name === "group") {
      var chosen = form.querySelector("input[name=groups_mode][value=chosen]");
      if (event.target.checked && chosen) { chosen.checked = true; }
      refresh();
    } else if (name === "groups_mode") {
      refresh();
    } else if (name === "remediation_type") {
      syncDue();
    }
  });
  syncDue();
})();
