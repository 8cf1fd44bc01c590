// The API of ../shared/API.md: the stored login, requests and the URLs.
"use strict";

const TOKEN_KEY = "messenger.token";
const EXPIRES_KEY = "messenger.expiresAt";
const LAST_EVENT_KEY = "messenger.lastEventId";
const REQUEST_TIMEOUT_MS = 15000;

// A token this close to its expiry is swapped for a fresh one at page load.
const REFRESH_BEFORE_MS = 7 * 24 * 3600 * 1000;

function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

function storeLogin(payload) {
  localStorage.setItem(TOKEN_KEY, payload.token);
  localStorage.setItem(EXPIRES_KEY, payload.expiresAt);
}

function forgetLogin() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(EXPIRES_KEY);
  sessionStorage.removeItem(LAST_EVENT_KEY);
}

function refreshTokenIfOld() {
  const expiresAt = Date.parse(localStorage.getItem(EXPIRES_KEY) || "");
  if (!(expiresAt - Date.now() < REFRESH_BEFORE_MS)) {
    return;
  }

  apiRequest("POST", "/api/refresh_token").then(storeLogin, $.noop);
}

// Resolves with the JSON answer; rejects with {status, message, errors}.
function apiRequest(method, path, body) {
  const token = storedToken();
  const settings = {
    method: method,
    url: path,
    dataType: "json",
    headers: {},
    timeout: REQUEST_TIMEOUT_MS,
  };
  if (token) {
    settings.headers.Authorization = "Bearer " + token;
  }

  if (body !== undefined) {
    settings.contentType = "application/json";
    settings.data = JSON.stringify(body);
  }

  return new Promise(function (resolve, reject) {
    $.ajax(settings)
      .done(function (answer) {
        resolve(answer);
      })
      .fail(function (request) {
        const error = apiError(request);
        if (error.status === 401 && token) {
          signedOut();
        }

        reject(error);
      });
  });
}

function apiError(request) {
  const answer = request.responseJSON || {};
  let message = answer.message;
  if (!message) {
    message = request.status
      ? "Something went wrong. Try again."
      : "Cannot reach the server. Check your connection.";
  }

  return {
    status: request.status,
    message: message,
    errors: answer.errors || {},
  };
}

// What to tell a person: the field's own message when there is one.
function errorText(error) {
  const fields = Object.values(error.errors);
  return fields.length ? fields[0] : error.message;
}

// The token is no longer good: start again from the access page.
function signedOut() {
  forgetLogin();
  window.location.reload();
}

function withQuery(path, params) {
  const kept = {};
  $.each(params, function (name, value) {
    if (value !== undefined && value !== null) {
      kept[name] = value;
    }
  });

  const query = $.param(kept);
  return query ? path + "?" + query : path;
}

function conversationsPath(params) {
  return withQuery("/api/conversations", params || {});
}

function conversationPath(id, suffix) {
  return "/api/conversations/" + encodeURIComponent(id) + (suffix || "");
}

function messagesPath(id, params) {
  return withQuery(conversationPath(id, "/messages"), params || {});
}

function usernamesPath(search) {
  return withQuery("/api/usernames", { search: search });
}

function streamUrl(lastEventId) {
  return withQuery("/api/messages", {
    token: storedToken(),
    lastEventId: lastEventId || undefined,
  });
}

function conversationPageUrl(id) {
  return "/conversations/" + encodeURIComponent(id);
}

// Ids are decimal strings that may not fit a JavaScript number.
function isNewerId(id, than) {
  if (id.length !== than.length) {
    return id.length > than.length;
  }

  return id > than;
}
