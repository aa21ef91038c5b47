"""Optional access control of the web chat (`OPENCITE_UI__PASSWORD`, `OPENCITE_UI__TRUSTED_USER_HEADER`).

- Trusted header: a reverse proxy that authenticates users (oauth2-proxy, Authelia, a company SSO)
  passes the user name in a header; without it the chat shows nothing. Only safe when the chat is
  reachable through that proxy alone (bind it to 127.0.0.1 or a private network).
- Password: one shared password, asked once per browser session, compared in constant time.
"""

from __future__ import annotations

import hmac

import streamlit as st

from opencite.settings import UiSettings


def require_user(ui: UiSettings) -> str | None:
    """The signed-in user name (None when no auth is configured); stops the page until there is one."""
    if ui.trusted_user_header:
        user = (st.context.headers.get(ui.trusted_user_header) or "").strip()
        if not user:
            st.error(f"Not signed in: this chat expects the `{ui.trusted_user_header}` header from its "
                     "authenticating proxy. Open it through the proxy.")
            st.stop()
        return user
    if ui.password is not None and not st.session_state.get("signed_in"):
        with st.form("sign-in"):
            given = st.text_input("Password", type="password")
            if st.form_submit_button("Sign in"):
                if hmac.compare_digest(given.encode(), ui.password.get_secret_value().encode()):
                    st.session_state.signed_in = True
                    st.rerun()
                st.error("Wrong password.")
        st.stop()
    return None
