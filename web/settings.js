// The settings page: one switch per consent or objectable rule, the uses that need no choice,
// the uses that never happen, history with receipts. Talks only to this server's /v1 API with
// the session cookie and its CSRF token. No external scripts, no inline script (strict CSP).
'use strict';

const Assent = (() => {
  let csrf = '';

  async function api(method, path, body) {
    const headers = { 'Accept': 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
    const res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    if (!res.ok) {
      const err = new Error((data && (data.detail || data.title)) || res.statusText);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }

  function say(message, warn, ...more) {
    const s = document.getElementById('status');
    s.replaceChildren(el('div', { class: warn ? 'notice warn' : 'notice', text: message }, ...more));
  }

  // "30 November 2026 at 11:31": a date a person reads, never a position or a hash.
  function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric' }) +
           ' at ' + d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  }

  // A link that downloads the receipt of one of the party's events (JSON, verifiable offline
  // with `assent audit verify-receipt`).
  function receiptLink(kind, id, position, text) {
    const base = kind === 'account' ? '/v1/accounts/' : '/v1/subjects/';
    return el('a', { class: 'receipt', href: base + encodeURIComponent(id) + '/receipts/' + position,
                     download: 'receipt-' + position + '.json', text: text || 'Download receipt' });
  }

  // Plain names for the terms' categories and purposes (their descriptions), from the rules.
  function namesOf(consents) {
    const names = new Map();
    for (const r of consents.rules) {
      for (const c of r.categories) names.set(c.name, c.description.replace(/\.$/, ''));
      for (const p of r.purposes) names.set(p.name, p.description.replace(/\.$/, '').toLowerCase());
    }
    return (n) => names.get(n) || n;
  }

  const kHow = { settings: 'On this page', admin: 'By your account\'s admin', api: 'By the service',
                 gpc: 'Your browser\'s privacy signal', import: 'Imported from an earlier system' };

  // A name as a person reads it: the last part of "service_generated.product_usage", in words.
  function plainName(name) {
    const last = name.split('.').pop().replace(/_/g, ' ');
    return last.charAt(0).toUpperCase() + last.slice(1);
  }

  function definitions(rule) {
    const dl = el('dl');
    for (const c of rule.categories) {
      const dd = el('dd', { text: c.description });
      if (c.includes && c.includes.length) {  // e.g. service-generated data: what it covers
        dd.append(el('ul', {}, ...c.includes.map((k) =>
          el('li', { text: plainName(k.name) + ': ' + k.description }))));
      }
      dl.append(el('dt', { text: 'Data: ' + plainName(c.name) }), dd);
    }
    for (const p of rule.purposes) {
      dl.append(el('dt', { text: 'Use: ' + plainName(p.name) }), el('dd', { text: p.description }));
    }
    const d = el('details', {}, el('summary', { text: 'What this means, and the terms behind it' }), dl);
    for (const c of rule.clauses) {
      d.append(el('p', { class: 'meta', text: 'Clause ' + c.id + (c.title ? ' — ' + c.title : '') }),
               el('blockquote', { text: c.text }));
    }
    return d;
  }

  // Whether the switch is on: a consent rule needs a live grant; an objectable rule is on
  // unless the party objected.
  function isOn(rule) {
    if (rule.basis === 'consent') return rule.state === 'granted';
    return rule.state !== 'withdrawn';
  }

  function stateText(rule, events) {
    const ev = events.find((e) => e.position === rule.event);
    const since = ev ? ' since ' + when(ev.at) : '';
    const receipt = '';
    switch (rule.state) {
      case 'granted': return (rule.basis === 'consent' ? 'On — you agreed' : 'On') + since + receipt;
      case 'withdrawn': return 'Off — you said no' + since + receipt;
      case 'stale': return 'Off — the terms changed since you agreed; please decide again' + receipt;
      case 'expired': return 'Off — your agreement expired; please decide again' + receipt;
      case 'mixed': return (rule.stale ? 'Partly off — the terms changed since you agreed; please decide again'
                                       : 'Partly on — you decided differently for parts of this') + receipt;
      default: return rule.basis === 'consent' ? 'Off — you have not agreed' :
                                                'On — you have not objected';
    }
  }

  async function renderChoices(kind, id, consents, history, container) {
    const events = history.events;
    container.replaceChildren();
    const mine = consents.rules.filter((r) =>
      (r.basis === 'consent' || r.basis === 'objectable') && r.state !== undefined);
    if (!mine.length) container.append(el('p', { text: 'Nothing here asks for your choice.' }));
    for (const rule of mine) {
      const on = isOn(rule);
      const label = 'sw-' + rule.rule;
      const button = el('button', {
        class: 'switch', type: 'button', role: 'switch', 'aria-checked': String(on),
        'aria-labelledby': label + '-label', 'aria-describedby': label + '-state',
        text: on ? 'On' : 'Off',
      });
      button.addEventListener('click', async () => {
        button.disabled = true;
        const action = on ? 'withdraw' : 'grant';
        try {
          const base = kind === 'account' ? '/v1/accounts/' : '/v1/subjects/';
          // The notice this card displays (summary, definitions, clauses) is recorded with
          // the choice, and its hash is in the receipt.
          const r = await api('POST', base + encodeURIComponent(id) + '/consents',
                              { rule: rule.rule, action, notice: rule.notice });
          say((action === 'grant' ? 'Turned on' : 'Turned off') + ': "' + rule.summary +
              '". Saved on ' + when(r.at) + '. ', false,
              receiptLink(kind, id, r.position, 'Download the receipt'));
          await refresh();
          const again = document.querySelector('[aria-labelledby="' + label + '-label"]');
          if (again) again.focus();
        } catch (e) {
          say('Not changed: ' + e.message, true);
          button.disabled = false;
        }
      });
      const note = rule.consent_from === 'account_and_subjects'
        ? el('p', { class: 'meta', text: kind === 'account'
            ? 'Each member must agree too; without the account, no member can switch this on.'
            : 'Your account must agree too; its admin can keep this off for everyone.' })
        : null;
      container.append(el('div', { class: 'card' },
        el('div', { class: 'row' },
          el('div', {},
            el('p', { class: 'summary', id: label + '-label', text: rule.summary }),
            el('p', { class: 'meta', id: label + '-state', text: stateText(rule, events) }),
            rule.event ? receiptLink(kind, id, rule.event) : null,
            note),
          button),
        definitions(rule)));
    }
  }

  // A sentence for a rule nobody chooses: the terms' own summary, else one made from the
  // plain descriptions ("We never use messages sent in chat for training models.").
  function sentence(rule) {
    if (rule.summary) return rule.summary;
    const trim = (t) => t.replace(/\.$/, '');
    const lower = (t) => trim(t).charAt(0).toLowerCase() + trim(t).slice(1);
    const data = rule.categories.map((c) => lower(c.description)).join('; ');
    const uses = rule.purposes.map((p) => lower(p.description)).join('; ');
    return (rule.basis === 'prohibited' ? 'We never use ' : 'We use ') + data + ' for: ' + uses + '.';
  }

  function renderFixed(consents, kinds, container, badge, why) {
    container.replaceChildren();
    for (const rule of consents.rules.filter((r) => kinds.includes(r.basis))) {
      container.append(el('div', { class: 'card' },
        el('p', { class: 'summary' }, el('span', { class: badge, text: why }), ' ' + sentence(rule)),
        definitions(rule)));
    }
  }

  function renderHistory(history, container, consents, kind, id) {
    const name = consents ? namesOf(consents) : (n) => n;
    container.replaceChildren();
    if (!history.events.length) {
      container.append(el('p', { text: 'No choices recorded yet.' }));
      return;
    }
    const table = el('table', {}, el('caption', { class: 'visually-hidden', text: 'Your consent events' }),
      el('thead', {}, el('tr', {}, ...['When', 'What', 'Data and use', 'How', 'Receipt']
        .map((h) => el('th', { scope: 'col', text: h })))));
    const body = el('tbody');
    for (const e of [...history.events].reverse()) {
      body.append(el('tr', {},
        el('td', { text: when(e.at) }),
        el('td', { text: e.action === 'grant' ? 'Agreed' : 'Said no' }),
        el('td', { text: e.categories.map(name).join('; ') + ' — for ' + e.purposes.map(name).join('; ') }),
        // How it was recorded, in words (the key's name and the rest are in the receipt).
        el('td', { text: kHow[e.method] || e.method }),
        el('td', {}, kind ? receiptLink(kind, id, e.position) : el('span', { text: '' }))));
    }
    table.append(body);
    container.append(table);
  }

  let refresh = async () => {};

  async function settingsPage() {
    let session;
    try {
      session = await api('GET', '/v1/session');
    } catch (e) {
      document.getElementById('who').textContent =
        'You are not signed in. Open the link the platform gave you to see your choices.';
      return;
    }
    csrf = session.csrf_token;
    if (!session.subject) {
      document.getElementById('who').textContent = 'This page is for people; account admins use /admin.';
      return;
    }
    const id = session.subject;
    document.getElementById('who').textContent = 'Signed in as ' + id + '.';
    if (session.gpc && session.gpc.signal) {
      const gpc = await api('POST', '/v1/session/gpc', {});
      if (gpc.honoured) {
        const uses = gpc.recorded.length ? await api('GET', '/v1/subjects/' + encodeURIComponent(id) +
                                                     '/consents') : null;
        const summaries = uses ? uses.rules.filter((r) => gpc.recorded.includes(r.rule))
                                           .map((r) => '"' + r.summary + '"') : [];
        say('Your browser asked sites not to sell or share your data (Global Privacy Control). ' +
            (summaries.length ? 'We recorded that you said no to: ' + summaries.join(', ') + '.'
                              : 'You had already said no to every use it covers.'));
      }
    }
    refresh = async () => {
      const [consents, history] = await Promise.all([
        api('GET', '/v1/subjects/' + encodeURIComponent(id) + '/consents'),
        api('GET', '/v1/subjects/' + encodeURIComponent(id) + '/history')]);
      document.getElementById('terms').textContent = consents.terms;
      await renderChoices('subject', id, consents, history, document.getElementById('choices'));
      renderFixed(consents, ['necessary'], document.getElementById('needed'), 'badge',
                  'To deliver the service you asked for:');
      renderFixed(consents, ['prohibited'], document.getElementById('never'), 'badge never',
                  'Never, whatever you choose:');
      const stale = consents.rules.filter((r) => r.stale);
      if (stale.length) {
        const box = el('div', { class: 'notice warn' },
          el('p', { text: 'The terms changed after you agreed to: ' +
                    stale.map((r) => '"' + r.summary + '"').join(', ') +
                    '. Your earlier agreement no longer counts. What changed:' }));
        const old = history.events.filter((e) => e.action === 'grant').map((e) => e.terms_version);
        const current = consents.terms.split('@')[1];
        const from = old.find((v) => v !== current);
        if (from) {
          try {
            const d = await api('GET', '/v1/terms/' + encodeURIComponent(from) + '/diff/' +
                                encodeURIComponent(current));
            const list = el('ul');
            for (const c of d.clauses.reworded) list.append(el('li', { text: 'Clause ' + c + ' was reworded' }));
            for (const c of d.categories.redefined) list.append(el('li', { text: 'The meaning of "' + c + '" changed' }));
            for (const p of d.purposes.redefined) list.append(el('li', { text: 'The meaning of "' + p + '" changed' }));
            box.append(list);
          } catch (e) { /* the notice stands without the details */ }
        }
        // Asked again in one action: yes under the new wording (a fresh grant), or no.
        for (const rule of stale) {
          const answer = async (action, button) => {
            button.disabled = true;
            try {
              const r = await api('POST', '/v1/subjects/' + encodeURIComponent(id) + '/consents',
                                  { rule: rule.rule, action, notice: rule.notice });
              say((action === 'grant' ? 'You agreed again, under the new wording: "'
                                      : 'You said no: "') + rule.summary + '". Saved on ' +
                  when(r.at) + '. ', false, receiptLink('subject', id, r.position, 'Download the receipt'));
              await refresh();
            } catch (e) {
              say('Not changed: ' + e.message, true);
              button.disabled = false;
            }
          };
          const yes = el('button', { type: 'button', class: 'primary', text: 'Yes, under the new wording' });
          const no = el('button', { type: 'button', text: 'No' });
          yes.addEventListener('click', () => answer('grant', yes));
          no.addEventListener('click', () => answer('withdraw', no));
          box.append(el('div', { class: 'row ask-again', role: 'group', 'aria-label': 'Ask again: ' + rule.summary },
            el('p', { text: '"' + rule.summary + '" — do you still agree?' }), yes, no));
        }
        document.getElementById('choices').prepend(box);
      }
      const usage = await api('GET', '/v1/subjects/' + encodeURIComponent(id) + '/usage');
      const used = document.getElementById('used');
      if (!usage.datasets.length) {
        used.replaceChildren(el('p', { text: 'No recorded training dataset includes your data.' }));
      } else {
        const list = el('ul');
        for (const d of usage.datasets) {
          const status = d.status === 'built-before-withdrawal'
            ? ' — built before you said no; models trained on it must be retrained without your data'
            : d.status === 'built-after-withdrawal' ? ' — built after your last change' : '';
          list.append(el('li', { text: d.name + ': for ' + namesOf(consents)(d.purpose) + ', built ' + when(d.recorded_at) +
                                       status + (d.models.length ? ' (models: ' + d.models.join(', ') + ')' : '') }));
        }
        used.replaceChildren(list);
      }
      renderHistory(history, document.getElementById('history'), consents, 'subject', id);
    };
    await refresh();
  }

  return { api, el, say, renderChoices, renderHistory, settingsPage,
           setCsrf: (t) => { csrf = t; }, setRefresh: (f) => { refresh = f; } };
})();

if (document.getElementById('needed')) {
  document.addEventListener('DOMContentLoaded', () => Assent.settingsPage());
}
