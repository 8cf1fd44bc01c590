// Pieces every page draws: avatars, times, the tab title and status lines.
// Server text always goes in with .text(), never as HTML.
"use strict";

const AVATAR_HUES = 8;
const TIME_REFRESH_MS = 30000;
const APP_NAME = "Messenger";

const titleState = { name: "", unread: 0 };

function showPage(id) {
  $("#app-status").prop("hidden", true);
  $("#" + id).prop("hidden", false);
}

function showAppStatus(text) {
  $("#app-status").text(text).prop("hidden", false);
}

function avatarFor(user) {
  const url = imageUrl(user.avatarURL);
  if (url) {
    return $("<img>", { class: "avatar", alt: "" }).attr("src", url);
  }

  const initial = Array.from(user.username)[0] || "?";
  return $("<span>", { class: "avatar", "aria-hidden": "true" })
    .addClass("avatar-hue-" + hueOf(user.username))
    .text(initial.toUpperCase());
}

// Only http(s) images: anything else in avatarURL draws the initial.
function imageUrl(value) {
  if (!value) {
    return null;
  }

  try {
    const url = new URL(value, window.location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch (error) {
    return null;
  }
}

function hueOf(text) {
  let sum = 0;
  for (const character of text.toLowerCase()) {
    sum = (sum * 31 + character.codePointAt(0)) % 9973;
  }

  return sum % AVATAR_HUES;
}

// Date.parse keeps milliseconds; the API sends microseconds.
function parseTime(iso) {
  return new Date(iso.replace(/(\.\d{3})\d+/, "$1"));
}

function fullTime(iso) {
  return parseTime(iso).toLocaleString(undefined, {
    dateStyle: "full",
    timeStyle: "medium",
  });
}

function relativeTime(iso, now) {
  const date = parseTime(iso);
  const seconds = Math.max(0, (now - date) / 1000);
  if (seconds < 60) {
    return "now";
  }

  if (seconds < 3600) {
    return Math.floor(seconds / 60) + " min";
  }

  if (seconds < 24 * 3600) {
    return Math.floor(seconds / 3600) + " h";
  }

  if (seconds < 7 * 24 * 3600) {
    return Math.floor(seconds / (24 * 3600)) + " d";
  }

  return date.toLocaleDateString();
}

function clockTime(iso) {
  const date = parseTime(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  const options = { hour: "2-digit", minute: "2-digit" };
  if (sameDay) {
    return date.toLocaleTimeString(undefined, options);
  }

  return date.toLocaleString(undefined, { month: "short", day: "numeric", ...options });
}

// A <time> that shows how long ago, kept current by refreshRelativeTimes().
function relativeTimeElement(iso) {
  return $("<time>", { class: "relative-time" })
    .attr("datetime", iso)
    .attr("title", fullTime(iso))
    .text(relativeTime(iso, new Date()));
}

function clockTimeElement(iso) {
  return $("<time>")
    .attr("datetime", iso)
    .attr("title", fullTime(iso))
    .text(clockTime(iso));
}

function refreshRelativeTimes() {
  const now = new Date();
  $("time.relative-time").each(function () {
    $(this).text(relativeTime(this.getAttribute("datetime"), now));
  });
}

function keepTimesCurrent() {
  window.setInterval(refreshRelativeTimes, TIME_REFRESH_MS);
}

function setTitleName(name) {
  titleState.name = name;
  drawTitle();
}

function setTitleUnread(count) {
  titleState.unread = count;
  drawTitle();
}

// The unread count shows in the tab title only while the tab is hidden.
function drawTitle() {
  const base = titleState.name ? titleState.name + " – " + APP_NAME : APP_NAME;
  const prefix = document.hidden && titleState.unread > 0
    ? "(" + titleState.unread + ") "
    : "";
  document.title = prefix + base;
}

function showConnectionStatus(connected) {
  $("#connection-status").prop("hidden", connected);
}

function isNearBottom(scroller, margin) {
  const gap = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  return gap <= margin;
}
