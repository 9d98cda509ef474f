// The admin page: an account admin's choices for the account (the admin lock), and the
// operator's terms tools (versions, diff, publish with lint diagnostics inline).
'use strict';

(() => {
  const { api, el, say } = Assent;
  let operatorKey = '';

  async function operatorApi(method, path, body, contentType) {
    const res = await fetch(path, {
      method, credentials: 'omit',
      headers: { 'Authorization': 'Bearer ' + operatorKey,
                 'Content-Type': contentType || 'application/json' },
      body,
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error(data.detail || res.statusText);
      err.data = data;
      throw err;
    }
    return data;
  }

  async function accountPanel() {
    let session;
    try {
      session = await api('GET', '/v1/session');
    } catch (e) {
      document.getElementById('who').textContent =
        'Not signed in as an account admin. Operators can use an API key below.';
      return;
    }
    Assent.setCsrf(session.csrf_token);
    if (!session.account) {
      document.getElementById('who').textContent = 'Signed in as a person; your settings are at /settings.';
      return;
    }
    const id = session.account;
    document.getElementById('who').textContent = 'Admin of account ' + id + '.';
    document.getElementById('account-section').hidden = false;
    const refresh = async () => {
      const [consents, history] = await Promise.all([
        Assent.listing('/v1/accounts/', id),
        api('GET', '/v1/accounts/' + encodeURIComponent(id) + '/history')]);
      Assent.useLocale(consents, () => refresh());  // the terms in the admin's language
      await Assent.renderChoices('account', id, consents, history, document.getElementById('choices'));
      Assent.renderHistory(history, document.getElementById('history'), consents, 'account', id);
    };
    Assent.setRefresh(refresh);
    await refresh();
  }

  async function loadVersions() {
    const current = await operatorApi('GET', '/v1/terms');
    const list = el('ul');
    const versions = [];
    // The current version, and every version reachable from the ledger export's terms lines.
    const exported = await fetch('/v1/ledger', { headers: { 'Authorization': 'Bearer ' + operatorKey } })
      .then((r) => (r.ok ? r.text() : ''));
    for (const line of exported.split('\n')) {
      if (!line.includes('"kind":"terms"')) continue;
      const e = JSON.parse(line);
      versions.push(e.version);
      list.append(el('li', { text: e.terms + '@' + e.version + ' — effective ' + e.effective +
                                   (e.version === current.version ? ' (in effect)' : '') }));
    }
    document.getElementById('versions').replaceChildren(list);
    for (const id of ['diff-a', 'diff-b']) {
      const select = document.getElementById(id);
      select.replaceChildren(...versions.map((v) => el('option', { value: v, text: v })));
    }
    if (versions.length > 1) document.getElementById('diff-b').value = versions[versions.length - 1];
  }

  async function loadKeys() {
    const { keys } = await operatorApi('GET', '/v1/keys');
    const body = el('tbody');
    for (const k of keys) {
      const cell = el('td');
      if (!k.revoked) {
        const b = el('button', { type: 'button', text: 'Revoke ' + k.name });
        b.addEventListener('click', async () => {
          try {
            await operatorApi('POST', '/v1/keys/' + encodeURIComponent(k.name) + '/revoke');
            say('Revoked ' + k.name + '.');
            await loadKeys();
          } catch (e) { say('Not revoked: ' + e.message, true); }
        });
        cell.append(b);
      } else {
        cell.textContent = 'revoked';
      }
      body.append(el('tr', {}, el('td', { text: k.name }), el('td', { text: k.role }),
                      el('td', { text: k.created_at ? new Date(k.created_at).toLocaleString('en-GB',
                        { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit',
                          minute: '2-digit' }) : '' }), cell));
    }
    document.getElementById('keys').replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ...['Name', 'Role', 'Created', ''].map((h) =>
        el('th', { scope: 'col', text: h })))), body));
  }

  document.addEventListener('DOMContentLoaded', () => {
    accountPanel();
    document.getElementById('key-create-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const r = await operatorApi('POST', '/v1/keys', JSON.stringify({
          name: document.getElementById('new-key-name').value.trim(),
          role: document.getElementById('new-key-role').value }));
        document.getElementById('new-key').replaceChildren(
          el('p', { class: 'notice', text: 'Key for ' + r.name + ' (' + r.role + '), shown only now: ' }),
          el('p', { class: 'receipt', text: r.key }));
        await loadKeys();
      } catch (e) { say('No key created: ' + e.message, true); }
    });
    document.getElementById('key-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      operatorKey = document.getElementById('key').value.trim();
      try {
        await loadVersions();
        await loadKeys();
        document.getElementById('operator').hidden = false;
        say('Operator key accepted.');
      } catch (e) {
        say('That key does not work here: ' + e.message, true);
      }
    });
    document.getElementById('diff-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const a = document.getElementById('diff-a').value, b = document.getElementById('diff-b').value;
      try {
        const d = await operatorApi('GET', '/v1/terms/' + encodeURIComponent(a) + '/diff/' +
                                    encodeURIComponent(b));
        const rows = d.pairs.map((p) => el('tr', {},
          el('td', { text: p.change }), el('td', { text: p.category + ' × ' + p.purpose }),
          el('td', { text: p.old.basis + ' → ' + p.new.basis })));
        document.getElementById('diff').replaceChildren(
          el('p', { text: d.loosened ? 'Something became more permissive.' : 'Nothing became more permissive.' }),
          el('table', {}, el('tbody', {}, ...rows)));
      } catch (e) { say('Cannot compare: ' + e.message, true); }
    });
    document.getElementById('publish-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const out = document.getElementById('diagnostics');
      try {
        const r = await operatorApi('POST', '/v1/terms', document.getElementById('yaml').value,
                                    'application/yaml');
        out.replaceChildren(el('p', { text: (r.already_published ? 'Already published: ' : 'Published ') +
                                          r.terms + ' at position ' + r.position + '.' }));
        await loadVersions();
      } catch (e) {
        const list = el('ul');
        for (const d of (e.data && e.data.diagnostics) || []) {
          list.append(el('li', { text: 'line ' + d.line + ':' + d.column + ' ' + d.severity + ': ' +
                                       d.message + ' [' + d.code + ']' }));
        }
        out.replaceChildren(el('p', { class: 'notice warn', text: 'Refused: ' + e.message }), list);
      }
    });
  });
})();
