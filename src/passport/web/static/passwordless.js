/* passport: QR code login (poll with backoff) and passkeys (WebAuthn) — issue 21. No library:
   navigator.credentials.create/get with base64url helpers. Without JavaScript the other ways of
   logging in stay on the page. */
(function () {
  "use strict";

  // Where a sign-in on the login page goes: the page's own ``next`` (a path on this site, e.g. an
  // app's authorization request), else the account.
  function afterLogin() {
    var field = document.querySelector('input[name="next"]');
    var next = field ? field.value : "";
    return next.charAt(0) === "/" && next.charAt(1) !== "/" && next.charAt(1) !== "\\" ? next : "/account";
  }

  // --- base64url <-> ArrayBuffer --------------------------------------------------------------------
  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function fromBytes(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)passport_csrf=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function api(method, path, body) {
    return fetch("/api/v1" + path, {
      method: method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken(),
                "Accept-Language": document.documentElement.lang || "zh-CN"},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return {ok: response.ok, status: response.status, data: data};
      });
    });
  }

  // --- passkeys: options from the server's JSON to the browser's types and back ---------------------
  function creationOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }

  function requestOptions(options) {
    options.challenge = toBytes(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }

  function credentialJson(credential) {
    var response = credential.response;
    var out = {id: credential.id, rawId: fromBytes(credential.rawId), type: credential.type,
               clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
               response: {clientDataJSON: fromBytes(response.clientDataJSON)}};
    if (response.attestationObject) {
      out.response.attestationObject = fromBytes(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = fromBytes(response.authenticatorData);
      out.response.signature = fromBytes(response.signature);
      if (response.userHandle) out.response.userHandle = fromBytes(response.userHandle);
    }
    if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
    return out;
  }

  function passkeyLogin(phone, status) {
    status.textContent = "";
    api("POST", "/sessions/passkey/options", phone ? {phone: phone} : {}).then(function (answer) {
      if (!answer.ok) throw new Error(answer.data.title || "options");
      return navigator.credentials.get({publicKey: requestOptions(answer.data.publicKey)});
    }).then(function (credential) {
      return api("POST", "/sessions/passkey", {credential: credentialJson(credential)});
    }).then(function (answer) {
      if (answer.ok) {
        window.location.assign(afterLogin());
      } else {
        status.textContent = answer.data.title || status.getAttribute("data-failed");
        status.classList.add("field-error");
      }
    }).catch(function () {
      status.textContent = status.getAttribute("data-failed");
      status.classList.add("field-error");
    });
  }

  function setupPasskeyLogin() {
    var box = document.getElementById("passkey-login-box");
    if (!box || !window.PublicKeyCredential || !navigator.credentials) return;
    box.hidden = false;
    var status = document.getElementById("passkey-status");
    var byPhone = document.getElementById("passkey-login-phone");
    byPhone.hidden = false;
    document.getElementById("passkey-login").addEventListener("click", function () {
      passkeyLogin(null, status);
    });
    byPhone.addEventListener("click", function () {
      var input = document.querySelector("#form-password input[name=login]");
      var sms = document.querySelector("#form-sms input[name=phone]");
      var visible = input && !input.closest("[hidden]") ? input : sms;
      var phone = visible && visible.value.trim() ? visible.value.trim() : (input && input.value.trim()) || "";
      if (!phone) {
        status.textContent = status.getAttribute("data-need-phone");
        status.classList.add("field-error");
        if (input) input.focus();
        return;
      }
      passkeyLogin(phone, status);
    });
  }

  function setupPasskeyRegistration() {
    var button = document.getElementById("passkey-add");
    if (!button) return;
    var status = document.getElementById("passkey-add-status");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      button.disabled = true;
      status.textContent = status.getAttribute("data-unsupported");
      return;
    }
    button.addEventListener("click", function () {
      var nameInput = document.getElementById("passkey-name");
      button.disabled = true;
      status.textContent = "";
      var base = button.getAttribute("data-api") || "/me/passkeys";
      api("POST", base + "/options").then(function (answer) {
        if (!answer.ok) throw new Error(answer.data.title || "options");
        return navigator.credentials.create({publicKey: creationOptions(answer.data.publicKey)});
      }).then(function (credential) {
        return api("POST", base, {credential: credentialJson(credential),
                                            name: nameInput && nameInput.value.trim() ? nameInput.value.trim() : null});
      }).then(function (answer) {
        if (answer.ok) {
          window.location.assign(button.getAttribute("data-done") || "/account/passkeys?done=added");
        } else {
          button.disabled = false;
          status.textContent = answer.data.title || status.getAttribute("data-failed");
          status.classList.add("field-error");
        }
      }).catch(function () {
        button.disabled = false;
        status.textContent = status.getAttribute("data-failed");
        status.classList.add("field-error");
      });
    });
  }

  // --- QR code login -------------------------------------------------------------------------------
  function setupQr() {
    var panel = document.getElementById("panel-qr");
    if (!panel) return;
    var image = document.getElementById("qr-image");
    var status = document.getElementById("qr-status");
    var renew = document.getElementById("qr-renew");
    var timer = null;
    var started = false;
    var generation = 0;

    function say(key) {
      status.textContent = status.getAttribute("data-" + key) || "";
      status.setAttribute("data-state", key);
    }

    function end(key) {
      window.clearTimeout(timer);
      say(key);
      // The spent code stays in place, faded, so the page does not jump; it cannot be scanned usefully.
      image.classList.toggle("qr-dead", key !== "approved");
      renew.hidden = key === "approved";
    }

    // Backoff: 1 s, then ×1.5 up to 5 s; a hidden tab waits longer. No busy loop.
    function poll(id, delay, mine) {
      timer = window.setTimeout(function () {
        if (mine !== generation) return;
        api("GET", "/qr-logins/" + encodeURIComponent(id)).then(function (answer) {
          if (mine !== generation) return;
          if (!answer.ok) return end(answer.status === 404 ? "expired" : "failed");
          var state = answer.data.status;
          if (state === "approved") {
            end("approved");
            window.location.assign(afterLogin());
          } else if (state === "rejected" || state === "expired" || state === "used") {
            end(state);
          } else {
            say(state === "scanned" ? "scanned" : "waiting");
            poll(id, Math.min(delay * 1.5, 5000), mine);
          }
        }).catch(function () {
          if (mine === generation) poll(id, Math.min(delay * 2, 10000), mine);
        });
      }, document.hidden ? Math.max(delay, 5000) : delay);
    }

    function start() {
      started = true;
      generation += 1;
      var mine = generation;
      window.clearTimeout(timer);
      renew.hidden = true;
      api("POST", "/qr-logins").then(function (answer) {
        if (mine !== generation) return;
        if (!answer.ok) {
          status.textContent = answer.data.title || status.getAttribute("data-failed");
          renew.hidden = false;
          return;
        }
        image.src = answer.data.qr_image;
        image.classList.remove("qr-dead");
        image.hidden = false;
        image.setAttribute("data-payload", answer.data.qr_payload);
        say("waiting");
        poll(answer.data.id, 1000, mine);
      }).catch(function () { end("failed"); });
    }

    renew.addEventListener("click", start);
    var tab = document.getElementById("tab-qr");
    if (tab) tab.addEventListener("click", function () { if (!started) start(); });
    if (!panel.hidden) start();
  }

  /* Staff login: password and a passkey instead of the 6-digit code. */
  function setupStaffPasskey() {
    var button = document.getElementById("admin-passkey-login");
    if (!button || !window.PublicKeyCredential || !navigator.credentials) return;
    button.hidden = false;
    var status = document.getElementById("admin-passkey-status");
    button.addEventListener("click", function () {
      var login = document.getElementById("admin-login").value.trim();
      var password = document.getElementById("admin-password").value;
      var next = (document.querySelector('#form-admin-login input[name="next"]') || {}).value || "/admin";
      status.textContent = "";
      if (!login || !password) {
        status.textContent = status.getAttribute("data-need");
        status.classList.add("field-error");
        return;
      }
      api("POST", "/admin/sessions/passkey/options", {login: login}).then(function (answer) {
        if (!answer.ok) throw new Error(answer.data.title || "options");
        return navigator.credentials.get({publicKey: requestOptions(answer.data.publicKey)});
      }).then(function (credential) {
        return api("POST", "/admin/sessions/passkey",
                   {login: login, password: password, credential: credentialJson(credential)});
      }).then(function (answer) {
        if (answer.ok) {
          window.location.assign(next.charAt(0) === "/" && next.charAt(1) !== "/" ? next : "/admin");
        } else {
          status.textContent = answer.data.title || status.getAttribute("data-failed");
          status.classList.add("field-error");
        }
      }).catch(function () {
        status.textContent = status.getAttribute("data-failed");
        status.classList.add("field-error");
      });
    });
  }

  /* Step-up ("confirm it is you") with a passkey instead of the password. */
  function setupStepUpPasskey() {
    var box = document.getElementById("step-up-passkey-box");
    if (!box || !window.PublicKeyCredential || !navigator.credentials) return;
    box.hidden = false;
    var button = document.getElementById("step-up-passkey");
    var status = document.getElementById("step-up-passkey-status");
    button.addEventListener("click", function () {
      status.textContent = "";
      api("POST", "/me/step-up/passkey/options").then(function (answer) {
        if (!answer.ok) throw new Error(answer.data.title || "options");
        return navigator.credentials.get({publicKey: requestOptions(answer.data.publicKey)});
      }).then(function (credential) {
        return api("POST", "/me/step-up/passkey", {credential: credentialJson(credential)});
      }).then(function (answer) {
        if (answer.ok) {
          var next = button.getAttribute("data-next") || "/account";
          window.location.assign(next.charAt(0) === "/" && next.charAt(1) !== "/" ? next : "/account");
        } else {
          status.textContent = answer.data.title || status.getAttribute("data-failed");
          status.classList.add("field-error");
        }
      }).catch(function () {
        status.textContent = status.getAttribute("data-failed");
        status.classList.add("field-error");
      });
    });
  }

  function init() {
    setupStepUpPasskey();
    setupStaffPasskey();
    setupQr();
    setupPasskeyLogin();
    setupPasskeyRegistration();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
