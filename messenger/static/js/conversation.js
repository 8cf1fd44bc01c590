// The conversation page: history, sending, live messages, read markers.
//
// Stored messages sit in the list in id order, each once; messages being
// sent sit after them as pending until the API answers with the stored one.
"use strict";

const MESSAGE_PAGE_SIZE = 30;
const MAX_MESSAGE_CHARS = 480;
const COUNTER_FROM_CHARS = 400;
const OLDER_MARGIN_PX = 300;
const BOTTOM_MARGIN_PX = 80;

const chat = {
  id: "",
  me: null,
  conversation: null,
  ids: new Set(),
  oldestId: null,
  reachedStart: false,
  loadingOlder: false,
  unreadHere: 0,
  unreadElsewhere: 0,
  marking: false,
};

function startConversationPage(me, id) {
  chat.me = me;
  chat.id = id;
  showPage("conversation-page");
  $("#message-form").on("submit", submitMessage);
  $("#message-input").on("keydown", sendOnEnter).on("input", drawCounter);
  $("#message-scroller").on("scroll", scrollMessages);
  $("#message-list").on("click", ".retry", retryMessage);
  $("#jump-to-newest").on("click", scrollToNewest);
  $(document).on("visibilitychange", markReadIfVisible);
  openStream({
    load: loadConversation,
    message: receiveChatMessage,
    read: receiveChatRead,
  });
}

function scroller() {
  return $("#message-scroller")[0];
}

// Loading -------------------------------------------------------------------

function loadConversation() {
  const newest = messagesPath(chat.id, { limit: MESSAGE_PAGE_SIZE });
  return Promise.all([
    apiRequest("GET", conversationPath(chat.id)),
    apiRequest("GET", newest),
  ]).then(
    function ([conversation, page]) {
      showConversation(conversation);
      mergeNewestPage(page);
      markReadIfVisible();
      loadOlderIfNeeded();
    },
    function (error) {
      if (error.status !== 404) {
        throw error;
      }

      showConversationMissing();
    },
  );
}

function showConversation(conversation) {
  const first = chat.conversation === null;
  const other = conversation.otherParticipant;
  chat.conversation = conversation;
  chat.unreadHere = conversation.unreadCount;
  $("#conversation-title").text(other.username);
  $("#conversation-avatar").empty().append(avatarFor(other));
  setTitleName(other.username);
  drawChatUnread();
  if (first) {
    $("#message-input").trigger("focus");
  }
}

function showConversationMissing() {
  $("#message-scroller, #message-form, #conversation-page .bar").prop("hidden", true);
  $("#conversation-missing").prop("hidden", false);
  closeStream();
}

// The newest page, merged into what is shown. When it shares no message
// with it, messages were missed in between: start over from that page.
function mergeNewestPage(page) {
  const first = chat.ids.size === 0;
  const overlaps = page.some(function (message) {
    return chat.ids.has(message.id);
  });
  if (!first && !overlaps && page.length === MESSAGE_PAGE_SIZE) {
    $("#message-list > li[data-id]").remove();
    chat.ids.clear();
    chat.oldestId = null;
  }

  const atBottom = isNearBottom(scroller(), BOTTOM_MARGIN_PX);
  if (chat.ids.size === 0) {
    chat.reachedStart = page.length < MESSAGE_PAGE_SIZE;
  }

  for (const message of page) {
    insertMessage(message);
  }

  drawHistoryStatus();
  updateSeen();
  if (first || atBottom) {
    scrollToNewest();
  }
}

function scrollMessages() {
  if (isNearBottom(scroller(), BOTTOM_MARGIN_PX)) {
    $("#jump-to-newest").prop("hidden", true);
  }

  loadOlderIfNeeded();
}

// Older pages load while the reader is near the top, or the list is too
// short to scroll, until the first message.
function loadOlderIfNeeded() {
  if (chat.loadingOlder || chat.reachedStart || chat.oldestId === null) {
    return;
  }

  if (scroller().scrollTop > OLDER_MARGIN_PX) {
    return;
  }

  chat.loadingOlder = true;
  drawHistoryStatus();
  const older = { before: chat.oldestId, limit: MESSAGE_PAGE_SIZE };
  apiRequest("GET", messagesPath(chat.id, older))
    .then(function (page) {
      // Keep the messages in view where they are while older ones go above.
      const box = scroller();
      const fromBottom = box.scrollHeight - box.scrollTop;
      for (const message of page) {
        insertMessage(message);
      }

      box.scrollTop = box.scrollHeight - fromBottom;
      chat.reachedStart = page.length < MESSAGE_PAGE_SIZE;
      chat.loadingOlder = false;
      drawHistoryStatus();
      loadOlderIfNeeded();
    })
    .catch(function () {
      chat.loadingOlder = false;
      drawHistoryStatus();
    });
}

function drawHistoryStatus() {
  let text = "";
  if (chat.reachedStart) {
    text = "This is the start of your conversation.";
  } else if (chat.loadingOlder) {
    text = "Loading older messages…";
  }

  $("#history-status").text(text);
}

// Messages ------------------------------------------------------------------

// Put a stored message in its place by id; false when it is already shown.
function insertMessage(message) {
  if (chat.ids.has(message.id)) {
    return false;
  }

  chat.ids.add(message.id);
  if (chat.oldestId === null || isNewerId(chat.oldestId, message.id)) {
    chat.oldestId = message.id;
  }

  const item = messageItem(message);
  const stored = $("#message-list > li[data-id]");
  let next = null;
  for (let index = stored.length - 1; index >= 0; index -= 1) {
    if (isNewerId(message.id, stored[index].dataset.id)) {
      break;
    }

    next = stored[index];
  }

  if (next) {
    item.insertBefore(next);
  } else if (stored.length) {
    item.insertAfter(stored.last());
  } else {
    $("#message-list").prepend(item);
  }

  return true;
}

function messageItem(message) {
  const meta = $("<p>", { class: "message-meta" }).append(
    clockTimeElement(message.createdAt),
  );
  return $("<li>", { class: "message" })
    .addClass(message.mine ? "message-mine" : "message-theirs")
    .attr("data-id", message.id)
    .attr("data-created-at", message.createdAt)
    .append($("<p>", { class: "message-text" }).text(message.content))
    .append(meta);
}

// "Seen" goes under one's newest stored message once the other has read it.
function updateSeen() {
  $("#message-list .message-seen").remove();
  const newest = $("#message-list > li.message-mine[data-id]").last();
  const readAt = chat.conversation && chat.conversation.otherReadAt;
  if (!newest.length || !readAt || newest.attr("data-created-at") > readAt) {
    return;
  }

  newest
    .find(".message-meta")
    .append($("<span>", { class: "message-seen" }).text("Seen"));
}

function receiveChatMessage(message) {
  if (message.conversationId !== chat.id) {
    if (!message.mine) {
      chat.unreadElsewhere += 1;
      drawChatUnread();
    }

    return;
  }

  const atBottom = isNearBottom(scroller(), BOTTOM_MARGIN_PX);
  if (!insertMessage(message)) {
    return;
  }

  if (message.mine) {
    updateSeen();
  } else {
    chat.unreadHere += 1;
    drawChatUnread();
    markReadIfVisible();
  }

  if (atBottom) {
    scrollToNewest();
  } else if (!message.mine) {
    $("#jump-to-newest").prop("hidden", false);
  }
}

function receiveChatRead(read) {
  if (read.conversationId !== chat.id || read.userId === chat.me.id) {
    return;
  }

  const known = chat.conversation.otherReadAt;
  if (!known || read.readAt > known) {
    chat.conversation.otherReadAt = read.readAt;
    updateSeen();
  }
}

function scrollToNewest() {
  const box = scroller();
  box.scrollTop = box.scrollHeight;
  $("#jump-to-newest").prop("hidden", true);
}

// Reading -------------------------------------------------------------------

function markReadIfVisible() {
  if (document.hidden || chat.marking || chat.unreadHere === 0) {
    return;
  }

  chat.marking = true;
  const marked = chat.unreadHere;
  apiRequest("POST", conversationPath(chat.id, "/read_messages"))
    .then(function () {
      chat.unreadHere = Math.max(0, chat.unreadHere - marked);
      drawChatUnread();
    }, $.noop)
    .finally(function () {
      chat.marking = false;
    });
}

function drawChatUnread() {
  setTitleUnread(chat.unreadHere + chat.unreadElsewhere);
}

// Sending -------------------------------------------------------------------

function sendOnEnter(event) {
  const composing = event.originalEvent && event.originalEvent.isComposing;
  if (event.key !== "Enter" || event.shiftKey || composing) {
    return;
  }

  event.preventDefault();
  $("#message-form")[0].requestSubmit();
}

function submitMessage(event) {
  event.preventDefault();
  const input = $("#message-input");
  const content = normalizeContent(input.val());
  if (!content || characterCount(content) > MAX_MESSAGE_CHARS) {
    return;
  }

  input.val("");
  drawCounter();
  $("#message-error").text("");
  const item = pendingItem(content, newClientId());
  $("#message-list").append(item);
  scrollToNewest();
  postPending(item);
}

function pendingItem(content, clientId) {
  const meta = $("<p>", { class: "message-meta" }).append(
    $("<span>", { class: "message-state" }),
  );
  return $("<li>", { class: "message message-mine message-pending" })
    .data({ content: content, clientId: clientId })
    .append($("<p>", { class: "message-text" }).text(content))
    .append(meta);
}

// A retry sends the same clientId, so the server stores the message once.
function postPending(item) {
  item.removeClass("message-failed");
  item.find(".retry").remove();
  item.find(".message-state").text("Sending…");
  const body = { content: item.data("content"), clientId: item.data("clientId") };
  apiRequest("POST", messagesPath(chat.id), body).then(
    function (message) {
      settlePending(item, message);
    },
    function (error) {
      failPending(item, error);
    },
  );
}

// The stored message takes the pending one's place, unless the stream
// already brought it.
function settlePending(item, message) {
  const atBottom = isNearBottom(scroller(), BOTTOM_MARGIN_PX);
  item.remove();
  insertMessage(message);
  updateSeen();
  if (atBottom) {
    scrollToNewest();
  }
}

function failPending(item, error) {
  const retryable = error.status === 0 || error.status >= 500 || error.status === 429;
  if (!retryable) {
    item.remove();
    $("#message-error").text(errorText(error));
    if (!$("#message-input").val()) {
      $("#message-input").val(item.data("content"));
      drawCounter();
    }

    return;
  }

  item.addClass("message-failed");
  item.find(".message-state").text("Not sent.");
  item
    .find(".message-meta")
    .append($("<button>", { type: "button", class: "retry" }).text("Retry"));
}

function retryMessage() {
  postPending($(this).closest("li"));
}

function drawCounter() {
  const count = characterCount(normalizeContent($("#message-input").val()));
  const over = count > MAX_MESSAGE_CHARS;
  let text = "";
  if (count >= COUNTER_FROM_CHARS) {
    text = count + " / " + MAX_MESSAGE_CHARS;
  }

  if (over) {
    text += " – too long";
  }

  $("#message-counter").text(text).toggleClass("message-counter-over", over);
  $("#message-form button[type='submit']").prop("disabled", over);
}

// The server's rule: blanks collapse inside lines, lines are trimmed, and
// empty lines dropped.
function normalizeContent(text) {
  return text
    .split("\n")
    .map(function (line) {
      return line.replace(/[ \t\r\f]+/g, " ").trim();
    })
    .filter(Boolean)
    .join("\n");
}

function characterCount(text) {
  return Array.from(text).length;
}

function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, function (byte) {
    return byte.toString(16).padStart(2, "0");
  }).join("");
}
