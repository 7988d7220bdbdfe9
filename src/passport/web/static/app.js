/* passport pages: login tabs, "send code" buttons, copy button. Every form also works without it. */
(function () {
  "use strict";

  function csrfToken(form) {
    var input = form && form.querySelector('input[name="csrf_token"]');
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)passport_csrf=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /* Tabs: both forms are on the page; switch without a reload and keep the URL shareable. */
  function setupTabs() {
    var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"][aria-controls]'));
    tabs.forEach(function (tab) {
      tab.addEventListener("click", function (event) {
        event.preventDefault();
        tabs.forEach(function (other) {
          var selected = other === tab;
          other.setAttribute("aria-selected", selected ? "true" : "false");
          var panel = document.getElementById(other.getAttribute("aria-controls"));
          if (panel) panel.hidden = !selected;
        });
        if (window.history && history.replaceState) history.replaceState(null, "", tab.getAttribute("href"));
        var panel = document.getElementById(tab.getAttribute("aria-controls"));
        var first = panel && panel.querySelector("input:not([type=hidden])");
        if (first) first.focus();
      });
    });
  }

  /* "Send code": POST the JSON API, show its message, count down before the next send. */
  function setupSendCode(button) {
    var form = button.form;
    // With the script the button no longer submits the form: it is not the form's default button,
    // and Enter in a field submits the form itself.
    button.type = "button";
    var status = document.getElementById(button.getAttribute("data-status"));
    var label = button.textContent;
    var timer = null;

    function say(text, kind) {
      if (!status) return;
      status.textContent = text || "";
      status.classList.remove("field-error", "field-ok");
      if (kind) status.classList.add(kind === "error" ? "field-error" : "field-ok");
    }

    function countdown(seconds) {
      var left = Math.max(1, Math.ceil(seconds));
      var template = button.getAttribute("data-countdown");
      window.clearInterval(timer);
      button.disabled = true;
      button.textContent = template.replace("{n}", left);
      timer = window.setInterval(function () {
        left -= 1;
        if (left <= 0) {
          window.clearInterval(timer);
          button.disabled = false;
          button.textContent = label;
        } else {
          button.textContent = template.replace("{n}", left);
        }
      }, 1000);
    }

    button.addEventListener("click", function (event) {
      event.preventDefault();
      var phoneInput = form.querySelector('input[name="phone"]');
      var phone = phoneInput ? phoneInput.value.trim() : "";
      if (!phone) {
        say(button.getAttribute("data-need-phone"), "error");
        if (phoneInput) phoneInput.focus();
        return;
      }
      button.disabled = true;
      button.textContent = button.getAttribute("data-sending");
      fetch("/api/v1/verification-codes", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json",
                  "X-CSRF-Token": csrfToken(form)},
        body: JSON.stringify({channel: "sms", to: phone, purpose: button.value})
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.ok) {
            var minutes = Math.round((body.expires_in || 300) / 60);
            say(button.getAttribute("data-sent").replace("{m}", minutes), "ok");
            countdown(body.resend_after || 60);
            var codeInput = form.querySelector('input[name="code"]');
            if (codeInput) codeInput.focus();
            return;
          }
          var message = body.title || (body.errors && body.errors[0] && body.errors[0].message) ||
            button.getAttribute("data-failed");
          say(message, "error");
          if (response.status === 429) {
            countdown(parseInt(response.headers.get("Retry-After"), 10) || body.retry_after || 60);
          } else {
            button.disabled = false;
            button.textContent = label;
          }
        });
      }).catch(function () {
        say(button.getAttribute("data-failed"), "error");
        button.disabled = false;
        button.textContent = label;
      });
    });

    var wait = parseInt(button.getAttribute("data-wait"), 10);
    if (wait > 0) countdown(wait);
  }

  /* Copy the recovery key; the button only appears where the clipboard API exists. */
  function setupCopy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.textContent = button.getAttribute("data-copied");
        window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  }

  /* Admin console: the side navigation folds into a menu button on phones. */
  function setupAdminNav() {
    var nav = document.getElementById("admin-nav");
    var toggle = nav && nav.querySelector(".admin-nav-toggle");
    if (!toggle) return;
    var phone = window.matchMedia("(max-width: 719px)");
    toggle.hidden = false;
    function fold(folded) {
      nav.classList.toggle("is-collapsed", folded);
      toggle.setAttribute("aria-expanded", folded ? "false" : "true");
    }
    fold(phone.matches);
    toggle.addEventListener("click", function () { fold(!nav.classList.contains("is-collapsed")); });
  }

  /* Destructive forms (data-confirm="question"): submitting opens the page's <dialog>, which shows
     the question and takes the form's reason field (data-confirm-field) inside it; only its confirm
     button sends the form. Without the script the form posts as it is. */
  function setupConfirm(form) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    var confirmed = false;
    var submitter = null;
    var fieldName = form.getAttribute("data-confirm-field");
    var field = fieldName ? form.querySelector('[name="' + fieldName + '"]') : null;
    var holder = field ? field.closest(".field") : null;
    var home = holder ? holder.parentNode : null;
    var next = holder ? holder.nextSibling : null;
    if (holder) { holder.hidden = true; field.required = false; }  // asked for in the dialog
    form.addEventListener("submit", function (event) {
      if (confirmed) return;
      event.preventDefault();
      submitter = event.submitter || null;
      var slot = document.getElementById("confirm-dialog-fields");
      var select = form.querySelector("select[data-confirm-choice]");
      document.getElementById("confirm-dialog-title").textContent = form.getAttribute("data-confirm");
      document.getElementById("confirm-dialog-text").textContent =
        select ? select.options[select.selectedIndex].text : (form.getAttribute("data-confirm-text") || "");
      if (holder) {
        slot.appendChild(holder);
        holder.hidden = false;
        field.required = true;
      }
      var ok = document.getElementById("confirm-dialog-ok");
      var cancel = document.getElementById("confirm-dialog-cancel");
      function restore() {
        if (holder) {
          holder.hidden = true;
          field.required = false;
          home.insertBefore(holder, next);
        }
        ok.onclick = cancel.onclick = dialog.onclose = null;
      }
      ok.onclick = function () {
        if (field && !field.checkValidity()) { field.reportValidity(); return; }
        restore();
        confirmed = true;
        dialog.close();
        if (form.requestSubmit) form.requestSubmit(submitter || undefined); else form.submit();
      };
      cancel.onclick = function () { dialog.close(); };
      dialog.onclose = restore;
      dialog.showModal();
      if (field) field.focus(); else cancel.focus();
    });
  }

  function start() {
    setupAdminNav();
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), setupConfirm);
    setupTabs();
    Array.prototype.forEach.call(document.querySelectorAll("[data-send-code]"), setupSendCode);
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), setupCopy);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
