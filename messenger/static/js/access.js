// The access page: sign up, log in, or (in development) log in by name only.
"use strict";

function startAccessPage() {
  showPage("access-page");
  setTitleName("");
  $("#access-form").on("submit", submitAccess);
  $("#access-form input").on("input", clearAccessError);
  $("#access-username").trigger("focus");
}

function submitAccess(event) {
  event.preventDefault();
  const submitter = event.originalEvent && event.originalEvent.submitter;
  const action = submitter ? submitter.value : "login";
  const username = $("#access-username").val();
  const password = $("#access-password").val();

  let path = "/api/login";
  let body = { username: username, password: password };
  if (action === "signup") {
    path = "/api/users";
  } else if (action === "dev-login") {
    body = { username: username };
  }

  clearAccessErrors();
  const buttons = $("#access-form button").prop("disabled", true);
  apiRequest("POST", path, body)
    .then(enterApp, showAccessErrors)
    .finally(function () {
      buttons.prop("disabled", false);
    });
}

function enterApp(payload) {
  storeLogin(payload);
  $("#access-page").prop("hidden", true);
  $("#access-form").off("submit");
  $("#access-form input").off("input").val("");
  startApp();
}

// Each error goes beside the field it is about; the rest below the form.
function showAccessErrors(error) {
  const errors = $.extend({}, error.errors);
  if (error.status === 409 || error.status === 404) {
    errors.username = error.message;
  } else if (error.status === 401) {
    errors.password = error.message;
  } else if ($.isEmptyObject(errors)) {
    errors.form = error.message;
  }

  $.each(errors, function (field, message) {
    const place = accessErrorPlace(field);
    (place.length ? place : accessErrorPlace("form")).text(message);
    $("#access-form input")
      .filter(function () {
        return this.name === field;
      })
      .attr("aria-invalid", "true");
  });
}

function accessErrorPlace(field) {
  return $("#access-form [data-error-for]").filter(function () {
    return this.dataset.errorFor === field;
  });
}

function clearAccessError() {
  accessErrorPlace(this.name).text("");
  accessErrorPlace("form").text("");
  $(this).removeAttr("aria-invalid");
}

function clearAccessErrors() {
  $("#access-form [data-error-for]").text("");
  $("#access-form input").removeAttr("aria-invalid");
}
