// The login form (token mode): the only thing on the page until the daemon accepts a
// username and password. The token it answers is kept in sessionStorage by app.js.

import {api} from "./api.js";
import {h} from "./dom.js";

export function loginView({message, onLogin}) {
  const error = h("p", {class: "error", role: "alert", id: "login-error", hidden: true});
  const username = h("input", {id: "login-user", name: "username", autocomplete: "username",
                               required: true, autocapitalize: "none", spellcheck: "false"});
  const password = h("input", {id: "login-password", name: "password", type: "password",
                               autocomplete: "current-password", required: true});
  const submit = h("button", {class: "button primary", type: "submit"}, "Log in");

  async function send(event) {
    event.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const answer = await api("/api/v1/auth/login", {
        method: "POST", body: {username: username.value, password: password.value}});
      password.value = "";
      onLogin(answer.access_token);
    } catch (failure) {
      error.textContent = failure.status === 401
        ? `Login failed: ${failure.message}. Check the username and password.`
        : `Login failed: ${failure.message}`;
      error.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  }

  const form = h("form", {class: "login card", "aria-labelledby": "login-title",
                          "aria-describedby": "login-error", on: {submit: send}},
    h("h1", {id: "login-title"},
      h("img", {src: "/ui/icon.svg", alt: "", width: 28, height: 28}), " no8sd"),
    message ? h("p", {class: "muted"}, message) : null,
    h("label", {for: "login-user"}, "Username"), username,
    h("label", {for: "login-password"}, "Password"), password,
    error, submit);
  setTimeout(() => username.focus(), 0);
  return form;
}
