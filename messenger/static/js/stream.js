// The one EventSource of this tab: everything that happens to the person.
//
// The page gives openStream() a `load` function that (re)loads its state over
// the API, and one function per event kind. State is loaded when the stream
// first opens (so nothing falls between the load and the stream), after a
// `reset`, and after the browser gave up and a new stream was made. Events
// that arrive while a load runs wait for it, then apply in order; pages apply
// them by id, so one seen twice changes nothing.
"use strict";

// Waits before making a new stream once the browser has given up on one.
const STREAM_BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

const stream = {
  source: null,
  handlers: null,
  attempts: 0,
  timer: null,
  needsLoad: true,
  loadedOnce: false,
  loading: false,
  loadAgain: false,
  queue: [],
};

function openStream(handlers) {
  stream.handlers = handlers;
  connectStream();
}

function closeStream() {
  window.clearTimeout(stream.timer);
  if (stream.source) {
    stream.source.close();
    stream.source = null;
  }
}

function connectStream() {
  const lastEventId = sessionStorage.getItem(LAST_EVENT_KEY);
  const source = new EventSource(streamUrl(lastEventId));
  source.onopen = onStreamOpen;
  source.onerror = onStreamError;
  source.onmessage = function (event) {
    receiveStreamEvent("message", event);
  };
  for (const kind of ["conversation", "read", "reset"]) {
    source.addEventListener(kind, function (event) {
      receiveStreamEvent(kind, event);
    });
  }

  stream.source = source;
}

function onStreamOpen() {
  stream.attempts = 0;
  showConnectionStatus(true);
  if (stream.needsLoad) {
    loadStreamState();
  }
}

function onStreamError() {
  showConnectionStatus(false);
  if (!stream.loadedOnce && !stream.loading) {
    // Show what the API has while the stream is away; load again on open.
    loadStreamState();
    stream.needsLoad = true;
  }

  if (stream.source && stream.source.readyState === EventSource.CLOSED) {
    scheduleReconnect();
  }
}

// The browser gave up (an answer other than 200): try again, waiting longer
// each time, and only while the token still works.
function scheduleReconnect() {
  closeStream();
  const step = Math.min(stream.attempts, STREAM_BACKOFF_MS.length - 1);
  const delay = STREAM_BACKOFF_MS[step] * (0.5 + Math.random() / 2);
  stream.attempts += 1;
  stream.timer = window.setTimeout(function () {
    apiRequest("GET", "/api/auth_user").then(
      function () {
        stream.needsLoad = true;
        connectStream();
      },
      scheduleReconnect,
    );
  }, delay);
}

function receiveStreamEvent(kind, event) {
  if (event.lastEventId) {
    sessionStorage.setItem(LAST_EVENT_KEY, event.lastEventId);
  }

  let data;
  try {
    data = JSON.parse(event.data);
  } catch (error) {
    return;
  }

  if (kind === "reset") {
    loadStreamState();
    return;
  }

  if (stream.loading) {
    stream.queue.push([kind, data]);
    return;
  }

  applyStreamEvent(kind, data);
}

function applyStreamEvent(kind, data) {
  const handler = stream.handlers[kind];
  if (handler) {
    handler(data);
  }
}

function loadStreamState() {
  stream.needsLoad = false;
  if (stream.loading) {
    stream.loadAgain = true;
    return;
  }

  stream.loading = true;
  stream.handlers.load().then(
    function () {
      finishStreamLoad(true);
    },
    function () {
      finishStreamLoad(false);
    },
  );
}

function finishStreamLoad(loaded) {
  stream.loading = false;
  stream.loadedOnce = true;
  if (!loaded) {
    stream.needsLoad = true;
  }

  if (stream.loadAgain) {
    stream.loadAgain = false;
    loadStreamState();
    return;
  }

  const queued = stream.queue;
  stream.queue = [];
  for (const [kind, data] of queued) {
    applyStreamEvent(kind, data);
  }
}
