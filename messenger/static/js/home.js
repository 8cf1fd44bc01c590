// The home page: who is logged in, starting a conversation, and the live list.
"use strict";

const HOME_PAGE_SIZE = 25;
const SEARCH_DELAY_MS = 200;
const LIST_END_MARGIN_PX = 300;

const home = {
  me: null,
  items: new Map(),
  fetching: new Set(),
  loaded: false,
  exhausted: false,
  loadingMore: false,
  searchTimer: null,
  searchNumber: 0,
};

function startHomePage(me) {
  home.me = me;
  showPage("home-page");
  setTitleName("");
  $("#home-username").text(me.username);
  $("#home-avatar").append(avatarFor(me));
  $("#logout-button").on("click", logOut);
  $("#start-form").on("submit", submitStart);
  $("#start-username")
    .on("input", scheduleUsernameSearch)
    .on("keydown", enterSuggestions);
  $("#start-suggestions")
    .on("click", "button", pickSuggestion)
    .on("keydown", "button", moveAmongSuggestions);
  $(window).on("scroll resize", loadMoreIfNearEnd);
  keepTimesCurrent();
  openStream({
    load: loadConversations,
    message: receiveHomeMessage,
    conversation: receiveHomeConversation,
    read: receiveHomeRead,
  });
}

function logOut() {
  closeStream();
  apiRequest("POST", "/api/logout")
    .catch($.noop)
    .then(function () {
      forgetLogin();
      window.location.assign("/");
    });
}

// The list --------------------------------------------------------------------

// The first page, replacing whatever was shown: later pages load on scroll.
function loadConversations() {
  const limit = { limit: HOME_PAGE_SIZE };
  return apiRequest("GET", conversationsPath(limit)).then(function (page) {
    home.items.clear();
    $("#conversation-list").empty();
    for (const conversation of page) {
      placeConversation(conversation, "bottom");
    }

    home.loaded = true;
    home.exhausted = page.length < HOME_PAGE_SIZE;
    drawListSummary();
    loadMoreIfNearEnd();
  });
}

function loadMoreIfNearEnd() {
  if (!home.loaded || home.exhausted || home.loadingMore || stream.loading) {
    return;
  }

  const end = $("#conversation-list")[0].getBoundingClientRect().bottom;
  if (end > window.innerHeight + LIST_END_MARGIN_PX) {
    return;
  }

  // The page after the last entry shown, by the order the list keeps.
  const last = $("#conversation-list > li").last().attr("data-id");
  home.loadingMore = true;
  $("#conversations-more").prop("hidden", false);
  const query = { before: last, limit: HOME_PAGE_SIZE };
  apiRequest("GET", conversationsPath(query))
    .then(function (page) {
      for (const conversation of page) {
        if (!home.items.has(conversation.id)) {
          placeConversation(conversation, "bottom");
        }
      }

      home.exhausted = page.length < HOME_PAGE_SIZE;
      home.loadingMore = false;
      drawListSummary();
      loadMoreIfNearEnd();
    })
    .catch(function () {
      home.loadingMore = false;
    })
    .finally(function () {
      $("#conversations-more").prop("hidden", !home.loadingMore);
    });
}

// Draw one entry and put it at the top, at the bottom, or where it was.
function placeConversation(conversation, where) {
  const old = home.items.get(conversation.id);
  const item = conversationItem(conversation);
  home.items.set(conversation.id, item);
  if (old && where === "stay") {
    old.replaceWith(item);
    return;
  }

  if (old) {
    old.remove();
  }

  if (where === "top") {
    $("#conversation-list").prepend(item);
  } else {
    $("#conversation-list").append(item);
  }
}

function conversationItem(conversation) {
  const other = conversation.otherParticipant;
  const last = conversation.lastMessage;
  const unread = conversation.unreadCount;

  const name = $("<span>", { class: "conversation-name" }).text(other.username);
  const top = $("<span>", { class: "conversation-top" }).append(name);
  if (last) {
    top.append(relativeTimeElement(last.createdAt));
  }

  const preview = $("<span>", { class: "conversation-preview" });
  if (last) {
    preview.text((last.mine ? "You: " : "") + last.content);
  } else {
    preview.addClass("conversation-preview-empty").text("No messages yet");
  }

  const bottom = $("<span>", { class: "conversation-bottom" }).append(preview);
  if (unread > 0) {
    bottom.append(
      $("<span>", { class: "unread-count" })
        .append($("<span>").text(unread))
        .append($("<span>", { class: "visually-hidden" }).text(" unread")),
    );
  }

  const link = $("<a>", { class: "conversation-link" })
    .attr("href", conversationPageUrl(conversation.id))
    .append(avatarFor(other))
    .append($("<span>", { class: "conversation-body" }).append(top, bottom));

  return $("<li>", { class: "conversation" })
    .attr("data-id", conversation.id)
    .toggleClass("conversation-unread", unread > 0)
    .data("conversation", conversation)
    .append(link);
}

function drawListSummary() {
  $("#conversations-empty").prop("hidden", !home.loaded || home.items.size > 0);
  let unread = 0;
  home.items.forEach(function (item) {
    unread += item.data("conversation").unreadCount;
  });
  setTitleUnread(unread);
}

// Stream events -----------------------------------------------------------

function receiveHomeMessage(message) {
  const item = home.items.get(message.conversationId);
  if (!item) {
    fetchConversationToTop(message.conversationId);
    return;
  }

  const conversation = item.data("conversation");
  const last = conversation.lastMessage;
  if (last && !isNewerId(message.id, last.id)) {
    return;
  }

  // Sending moves the sender's read marker, so one's own message clears the count.
  const unread = message.mine ? 0 : conversation.unreadCount + 1;
  const changed = $.extend({}, conversation, {
    lastMessage: message,
    unreadCount: unread,
    hasUnreadMessages: unread > 0,
  });
  placeConversation(changed, "top");
  drawListSummary();
}

function fetchConversationToTop(id) {
  if (home.fetching.has(id)) {
    return;
  }

  home.fetching.add(id);
  apiRequest("GET", conversationPath(id))
    .then(function (conversation) {
      placeConversation(conversation, "top");
      drawListSummary();
    })
    .catch($.noop)
    .finally(function () {
      home.fetching.delete(id);
    });
}

function receiveHomeConversation(conversation) {
  if (home.items.has(conversation.id)) {
    return;
  }

  placeConversation(conversation, "top");
  drawListSummary();
}

function receiveHomeRead(read) {
  const item = home.items.get(read.conversationId);
  if (!item) {
    return;
  }

  const conversation = item.data("conversation");
  if (read.userId !== home.me.id) {
    conversation.otherReadAt = read.readAt;
    return;
  }

  // Read elsewhere (another tab): clear the count unless newer messages came.
  const last = conversation.lastMessage;
  if (last && last.createdAt > read.readAt) {
    return;
  }

  const changed = $.extend({}, conversation, {
    unreadCount: 0,
    hasUnreadMessages: false,
  });
  placeConversation(changed, "stay");
  drawListSummary();
}

// Starting a conversation ---------------------------------------------------

function scheduleUsernameSearch() {
  $("#start-error").text("");
  window.clearTimeout(home.searchTimer);
  const search = $(this).val().trim();
  if (!search) {
    home.searchNumber += 1;
    showSuggestions([]);
    return;
  }

  home.searchTimer = window.setTimeout(function () {
    searchUsernames(search);
  }, SEARCH_DELAY_MS);
}

// Answers can come back out of order: only the newest request's is shown.
function searchUsernames(search) {
  home.searchNumber += 1;
  const number = home.searchNumber;
  apiRequest("GET", usernamesPath(search)).then(function (names) {
    if (number === home.searchNumber) {
      showSuggestions(names);
    }
  }, $.noop);
}

function showSuggestions(names) {
  const list = $("#start-suggestions").empty();
  for (const name of names) {
    const button = $("<button>", { type: "button", class: "suggestion" }).text(name);
    list.append($("<li>").append(button));
  }

  list.prop("hidden", names.length === 0);
}

function enterSuggestions(event) {
  if (event.key === "ArrowDown") {
    event.preventDefault();
    $("#start-suggestions button").first().trigger("focus");
  } else if (event.key === "Escape") {
    showSuggestions([]);
  }
}

function moveAmongSuggestions(event) {
  const item = $(this).closest("li");
  if (event.key === "ArrowDown") {
    event.preventDefault();
    item.next().find("button").trigger("focus");
  } else if (event.key === "ArrowUp") {
    event.preventDefault();
    const previous = item.prev().find("button");
    (previous.length ? previous : $("#start-username")).trigger("focus");
  } else if (event.key === "Escape") {
    showSuggestions([]);
    $("#start-username").trigger("focus");
  }
}

function pickSuggestion() {
  $("#start-username").val($(this).text());
  startConversation($(this).text());
}

function submitStart(event) {
  event.preventDefault();
  startConversation($("#start-username").val().trim());
}

function startConversation(username) {
  if (!username) {
    $("#start-error").text("Type a username");
    return;
  }

  window.clearTimeout(home.searchTimer);
  home.searchNumber += 1;
  apiRequest("POST", "/api/conversations", { username: username }).then(
    function (conversation) {
      window.location.assign(conversationPageUrl(conversation.id));
    },
    function (error) {
      showSuggestions([]);
      $("#start-error").text(errorText(error));
    },
  );
}
