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

    // The wait survives a reload: its end is kept for this tab (sessionStorage), by purpose.
    var storeKey = "passport-wait-" + (button.value || "code");
    function countdown(seconds) {
      var until = Date.now() + Math.max(1, Math.ceil(seconds)) * 1000;
      try { window.sessionStorage.setItem(storeKey, String(until)); } catch (e) { /* private mode */ }
      runCountdown(button, label, until);
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
            if (body.limit && body.limit.count) {
              var rule = button.getAttribute(body.limit.per === "day" ? "data-limit-day" : "data-limit-hour");
              if (rule) say(message + " " + rule.replace("{n}", body.limit.count), "error");
            }
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
    var kept = 0;
    try { kept = parseInt(window.sessionStorage.getItem(storeKey), 10) || 0; } catch (e) { kept = 0; }
    if (wait > 0) countdown(wait);
    else if (kept > Date.now()) runCountdown(button, label, kept);
  }

  /* A button's countdown to ``until`` (ms): "Resend in 45 s", then "Resend in 53 min" for long waits. */
  function runCountdown(button, label, until) {
    var template = button.getAttribute("data-countdown") || "{n}";
    var minutes = button.getAttribute("data-countdown-minutes") || template;
    function show() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        window.clearInterval(button._timer);
        button.disabled = false;
        button.textContent = label;
        return;
      }
      button.disabled = true;
      button.textContent = left >= 90 ? minutes.replace("{n}", Math.ceil(left / 60)) : template.replace("{n}", left);
    }
    window.clearInterval(button._timer);
    show();
    button._timer = window.setInterval(show, 1000);
  }

  /* "Send code" to one's own phone (a form post, no script needed): count down the wait the page was
     rendered with, and put the page's own address back (the post went to ".../code"). */
  function setupOwnCode(button) {
    var wait = parseInt(button.getAttribute("data-wait"), 10);
    if (wait > 0) runCountdown(button, button.textContent, Date.now() + wait * 1000);
    var page = button.getAttribute("data-page");
    if (page && window.history && history.replaceState && window.location.pathname !== page) {
      history.replaceState(null, "", page + window.location.search);
    }
  }

  /* Password fields: a show/hide switch; a new password's rules ticked off as one types. */
  function setupPassword(input) {
    var holder = input.closest(".field");
    var show = document.body.getAttribute("data-show-password");
    var hide = document.body.getAttribute("data-hide-password");
    if (!holder || !show) return;
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "password-toggle";
    toggle.textContent = show;
    toggle.setAttribute("aria-controls", input.id);
    toggle.setAttribute("aria-pressed", "false");
    input.insertAdjacentElement("afterend", toggle);
    holder.classList.add("has-toggle");
    toggle.addEventListener("click", function () {
      var shown = input.type === "password";
      input.type = shown ? "text" : "password";
      toggle.textContent = shown ? hide : show;
      toggle.setAttribute("aria-pressed", shown ? "true" : "false");
      input.focus();
    });
    var rules = document.getElementById(input.id + "-rules");
    if (!rules) return;
    rules.hidden = false;
    var minLength = parseInt(rules.getAttribute("data-min-length"), 10) || 8;
    var minClasses = parseInt(rules.getAttribute("data-min-classes"), 10) || 3;
    function check() {
      var v = input.value;
      var classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter(function (re) { return re.test(v); }).length;
      var state = {length: v.length >= minLength, classes: classes >= minClasses};
      Array.prototype.forEach.call(rules.querySelectorAll("[data-rule]"), function (li) {
        var ok = state[li.getAttribute("data-rule")];
        li.classList.toggle("rule-ok", !!ok);
        li.classList.toggle("rule-bad", !ok && v.length > 0);
      });
    }
    input.addEventListener("input", check);
    check();
  }

  /* A confirmation field ("type the password again") says at once when the two differ. */
  function setupConfirmation(input) {
    var other = document.getElementById(input.getAttribute("data-same-as"));
    if (!other) return;
    function check() {
      input.setCustomValidity(input.value && input.value !== other.value ? input.getAttribute("data-mismatch") : "");
    }
    input.addEventListener("input", check);
    other.addEventListener("input", check);
  }

  /* Opening a message in the browser marks it read: the page posts its own "mark as read" form (a
     GET never changes anything), then drops the button and lowers the unread count. */
  function setupReadOnOpen(form) {
    if (!window.fetch || !window.FormData) return;
    fetch(form.getAttribute("action"), {method: "POST", body: new FormData(form), credentials: "same-origin",
                                         redirect: "manual"}).then(function () {
      form.hidden = true;
      var badge = document.getElementById("unread-badge");
      if (badge) {
        var left = (parseInt(badge.textContent, 10) || 1) - 1;
        if (left > 0) badge.textContent = String(left); else badge.parentNode.removeChild(badge);
      }
    }).catch(function () { /* the button stays */ });
  }

  /* Announcement banners can be closed; closed ones stay closed in this browser. */
  function setupDismiss(button) {
    var id = button.getAttribute("data-dismiss");
    var item = button.closest(".announcement-item");
    var banner = document.getElementById("announcement-banner");
    function closedIds() {  // read each time: several banners save into the same list
      try { return JSON.parse(window.localStorage.getItem("passport-closed-announcements") || "[]"); } catch (e) { return []; }
    }
    function hideEmpty() {
      if (banner && !banner.querySelector(".announcement-item:not([hidden])")) banner.hidden = true;
    }
    if (closedIds().indexOf(id) >= 0) { item.hidden = true; hideEmpty(); return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var closed = closedIds();
      closed.push(id);
      try { window.localStorage.setItem("passport-closed-announcements", JSON.stringify(closed.slice(-50))); } catch (e) { /* private mode */ }
      item.hidden = true;
      hideEmpty();
    });
  }

  /* The print button of the recovery key page. */
  function setupPrint(button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
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
    Array.prototype.forEach.call(document.querySelectorAll("[data-own-code]"), setupOwnCode);
    Array.prototype.forEach.call(document.querySelectorAll('input[type="password"][id]'), setupPassword);
    Array.prototype.forEach.call(document.querySelectorAll("input[data-same-as]"), setupConfirmation);
    Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), setupPrint);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-read-on-open]"), setupReadOnOpen);
    Array.prototype.forEach.call(document.querySelectorAll("[data-dismiss]"), setupDismiss);
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), setupCopy);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
