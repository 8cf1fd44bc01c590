// Start the page the URL names, once the person is known.
"use strict";

const AUTH_RETRY_MS = 3000;

$(bootApp);

function bootApp() {
  $(document).on("visibilitychange", drawTitle);
  startApp();
}

function startApp() {
  if (!storedToken()) {
    startAccessPage();
    return;
  }

  showAppStatus("Loading…");
  refreshTokenIfOld();
  loadMe();
}

// Who is logged in; a 401 has already sent the person to the access page.
function loadMe() {
  apiRequest("GET", "/api/auth_user").then(openSignedInPage, function (error) {
    if (error.status !== 401) {
      showAppStatus(error.message + " Trying again…");
      window.setTimeout(loadMe, AUTH_RETRY_MS);
    }
  });
}

function openSignedInPage(me) {
  const page = document.body.dataset;
  if (page.page === "conversation") {
    startConversationPage(me, page.conversationId);
  } else {
    startHomePage(me);
  }
}
