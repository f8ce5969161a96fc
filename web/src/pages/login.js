// Token login: the token is checked against the server before it is kept (localStorage).
import { h } from 'preact';
import { useState } from 'preact/hooks';
import htm from 'htm';
import { api, setToken } from '../api.js';
import { navigate } from '../route.js';

const html = htm.bind(h);

export function LoginPage({ reason }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState(reason || '');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api('/api/v1/jobs?page_size=1', { token: token.trim(), quiet: true });
      setToken(token.trim());
      setError('');
      navigate('jobs');
    } catch (err) {
      setError(err.status === 401 ? `The server refused this token: ${err.detail}` : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="login">
    <h1>Sign in</h1>
    <p>Paste an acs token (<code>acs-server token --name NAME --role user</code> makes one).
      It is kept in this browser's local storage and sent as <code>Authorization: Bearer</code>.</p>
    <form onSubmit=${submit}>
      <input type="password" name="token" autocomplete="off" placeholder="token" value=${token}
        onInput=${(e) => setValue(e.currentTarget.value)} data-testid="token-input" />
      <button type="submit" disabled=${busy || !token.trim()} data-testid="login-button">Sign in</button>
    </form>
    ${error && html`<p class="error" role="alert" data-testid="login-error">${error}</p>`}
  </section>`;
}
