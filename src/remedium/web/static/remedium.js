/* remedium: the few behaviours pages add to their server-rendered forms. No inline script:
   each part finds its form by a data attribute or id and does nothing on other pages. Every form
   works without this file (the server re-renders previews and refuses what is wrong). */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function byTestId(root, id) { return root.querySelector('[data-testid="' + id + '"]'); }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function postJson(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body)
    });
  }

  /* The exception form: an end date selects "Until an end date"; choosing a group selects
     "Chosen device groups"; the score preview follows the chosen groups and impact. */
  function exceptionForm(form) {
    var duration = form.querySelector("select[name=duration]");
    var endDate = form.querySelector("input[name=end_date]");
    var preview = document.querySelector('[data-testid="score-preview"]');
    var pending = 0;
    var impactLabels = { MitigationLike: "Mitigation-like", NoImpact: "No impact", Hybrid: "Hybrid" };
    var defaults = { CompensatingControl: "MitigationLike" };

    function checked(name) {
      var el = form.querySelector("input[name=" + name + "]:checked");
      return el ? el.value : "";
    }
    function refresh() {
      if (!preview) { return; }
      var status = byTestId(preview, "preview-status");
      var scope = checked("scope") || "all_groups";
      var ids = Array.prototype.map.call(form.querySelectorAll("input[name=group]:checked"), function (el) { return parseInt(el.value, 10); });
      if (scope === "groups" && ids.length === 0) {
        status.textContent = "Choose at least one device group to see the scores.";
        return;
      }
      var justification = checked("justification");
      var impact = form.querySelector("select[name=impact]").value || defaults[justification] || (justification ? "NoImpact" : "MitigationLike");
      var body = { scope: scope, device_group_ids: ids, impact: impact };
      body[form.dataset.type === "cve" ? "vulnerability_id" : "recommendation_id"] = form.dataset.target;
      var ticket = ++pending;
      status.textContent = "Updating…";
      postJson("/api/v1/exceptions/preview", body).then(function (reply) {
        if (ticket !== pending) { return; }
        if (!reply.ok) { status.textContent = "The preview could not be updated: use Update preview."; return; }
        return reply.json().then(function (data) {
          byTestId(preview, "preview-exposure").textContent = Number(data.exposure_score_with_exception).toFixed(2);
          byTestId(preview, "preview-secure").textContent = Number(data.secure_score_with_exception).toFixed(1) + "%";
          var count = scope === "groups" ? ids.length : form.querySelectorAll("input[name=group]").length;
          var where = scope === "global" ? "every device group" : count + " device group" + (count === 1 ? "" : "s");
          byTestId(preview, "preview-basis").textContent = impactLabels[impact] + " on " + where;
          status.textContent = "";
        });
      }).catch(function () { status.textContent = "The preview could not be updated: use Update preview."; });
    }
    form.addEventListener("change", function (event) {
      var target = event.target;
      if (target === endDate && endDate.value) {
        duration.value = "custom";
      } else if (target === duration && duration.value !== "custom") {
        endDate.value = "";
      } else if (target.name === "group" && target.checked) {
        var chosen = form.querySelector("input[name=scope][value=groups]");
        if (chosen) { chosen.checked = true; }
      }
      if (["scope", "group", "impact", "justification"].indexOf(target.name) >= 0) { refresh(); }
    });
  }

  /* The remediation request form: live device counts, and no due date for "Attention required". */
  function remediationForm(form) {
    var due = document.getElementById("due_on");
    var note = document.getElementById("attention-note");
    var pending = 0;
    function chosenGroups() {
      var mode = form.querySelector("input[name=groups_mode]:checked");
      if (!mode || mode.value === "all") { return null; }
      return Array.prototype.map.call(form.querySelectorAll("input[name=group]:checked"), function (el) { return parseInt(el.value, 10); });
    }
    function refresh() {
      var ids = chosenGroups();
      var statusLine = byTestId(document, "preview-status");
      if (ids !== null && ids.length === 0) {
        byTestId(document, "preview-devices").textContent = "0";
        byTestId(document, "preview-intune").textContent = "0";
        byTestId(document, "preview-message").hidden = true;
        statusLine.textContent = "Choose at least one device group.";
        return;
      }
      var ticket = ++pending;
      statusLine.textContent = "Counting…";
      postJson("/api/v1/remediation-activities/preview", { recommendation_id: form.dataset.recommendation, device_group_ids: ids }).then(function (reply) {
        if (ticket !== pending) { return; }
        if (!reply.ok) { statusLine.textContent = "The count could not be updated; use Preview."; return; }
        return reply.json().then(function (data) {
          byTestId(document, "preview-devices").textContent = fmt(data.devices_in_scope);
          byTestId(document, "preview-intune").textContent = fmt(data.intune_eligible_devices);
          var message = byTestId(document, "preview-message");
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
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-exception-form]"), exceptionForm);
    var request = document.getElementById("remediation-form");
    if (request) { remediationForm(request); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
