// The settings page: one switch per consent or objectable rule, the uses that need no choice,
// the uses that never happen, history with receipts. Talks only to this server's /v1 API with
// the session cookie and its CSRF token. No external scripts, no inline script (strict CSP).
'use strict';

const Assent = (() => {
  let csrf = '';

  // The page's own words in each language the terms may be offered in (the terms' texts come
  // translated from the server). Keys are the English text; a missing entry stays English.
  const kWords = {
    de: {
      'Your data choices': 'Ihre Datenentscheidungen',
      'Loading…': 'Wird geladen …',
      'What you decide': 'Was Sie entscheiden',
      'Each switch is one use of your data. Turning it on or off is one click, takes effect at once, and you get a receipt.':
        'Jeder Schalter steht für eine Verwendung Ihrer Daten. Ein- oder Ausschalten ist ein Klick, wirkt sofort, und Sie erhalten eine Quittung.',
      'What happens without asking you': 'Was geschieht, ohne Sie zu fragen',
      'These uses are needed to deliver the service you asked for.':
        'Diese Verwendungen sind nötig, um den Dienst zu erbringen, den Sie angefordert haben.',
      'What never happens, whatever you choose': 'Was niemals geschieht, wie auch immer Sie entscheiden',
      'Where your data was used': 'Wo Ihre Daten verwendet wurden',
      'Your history': 'Ihr Verlauf',
      'Language': 'Sprache',
      'On': 'An', 'Off': 'Aus',
      'Turned on': 'Eingeschaltet', 'Turned off': 'Ausgeschaltet',
      'Saved on': 'Gespeichert am', 'at': 'um', 'since': 'seit', 'for': 'für',
      'Download the receipt': 'Quittung herunterladen', 'Download receipt': 'Quittung herunterladen',
      'Not changed:': 'Nicht geändert:',
      'Nothing here asks for your choice.': 'Hier ist keine Entscheidung von Ihnen nötig.',
      'Data:': 'Daten:', 'Use:': 'Verwendung:',
      'What this means, and the terms behind it': 'Was das bedeutet, und die Bedingungen dahinter',
      'Clause': 'Klausel',
      'On — you agreed': 'An — Sie haben zugestimmt',
      'Off — you said no': 'Aus — Sie haben abgelehnt',
      'Off — the terms changed since you agreed; please decide again':
        'Aus — die Bedingungen haben sich geändert, seit Sie zugestimmt haben; bitte entscheiden Sie neu',
      'Off — your agreement expired; please decide again': 'Aus — Ihre Zustimmung ist abgelaufen; bitte entscheiden Sie neu',
      'Partly off — the terms changed since you agreed; please decide again':
        'Teilweise aus — die Bedingungen haben sich geändert, seit Sie zugestimmt haben; bitte entscheiden Sie neu',
      'Partly on — you decided differently for parts of this': 'Teilweise an — Sie haben für Teile davon verschieden entschieden',
      'Off — you have not agreed': 'Aus — Sie haben nicht zugestimmt',
      'On — you have not objected': 'An — Sie haben nicht widersprochen',
      'To deliver the service you asked for:': 'Um den Dienst zu erbringen, den Sie angefordert haben:',
      'Never, whatever you choose:': 'Niemals, wie auch immer Sie entscheiden:',
      'No choices recorded yet.': 'Noch keine Entscheidungen erfasst.',
      'When': 'Wann', 'What': 'Was', 'Data and use': 'Daten und Verwendung', 'How': 'Wie', 'Receipt': 'Quittung',
      'Agreed': 'Zugestimmt', 'Said no': 'Abgelehnt',
      'On this page': 'Auf dieser Seite', "By your account's admin": 'Durch die Verwaltung Ihres Kontos',
      'By the service': 'Durch den Dienst', "Your browser's privacy signal": 'Das Datenschutzsignal Ihres Browsers',
      'Imported from an earlier system': 'Aus einem früheren System übernommen',
      'Signed in as': 'Angemeldet als',
      'Yes, under the new wording': 'Ja, mit dem neuen Wortlaut', 'No': 'Nein',
      'You agreed again, under the new wording:': 'Sie haben erneut zugestimmt, mit dem neuen Wortlaut:',
      'You said no:': 'Sie haben abgelehnt:',
      'do you still agree?': 'stimmen Sie weiterhin zu?',
      'No recorded training dataset includes your data.': 'Kein erfasster Trainingsdatensatz enthält Ihre Daten.',
      'Terms:': 'Bedingungen:',
      'Assent records every choice in an append-only ledger; each receipt names its position and hash.':
        'Assent hält jede Entscheidung in einem Protokoll fest, an das nur angefügt wird; jede Quittung nennt ihre Position und ihren Hash.',
      'Each member must agree too; without the account, no member can switch this on.':
        'Jedes Mitglied muss ebenfalls zustimmen; ohne das Konto kann kein Mitglied dies einschalten.',
      'Your account must agree too; its admin can keep this off for everyone.':
        'Ihr Konto muss ebenfalls zustimmen; seine Verwaltung kann dies für alle ausgeschaltet lassen.',
    },
  };
  const kLanguageNames = { en: 'English', de: 'Deutsch', fr: 'Français', es: 'Español', it: 'Italiano' };
  let lang = 'en';
  const t = (words) => ((kWords[lang] || {})[words]) || words;
  // The person's own choice of language, kept in this browser; else the server follows the
  // browser's Accept-Language; else the terms' own language.
  const savedLocale = () => { try { return localStorage.getItem('assent.locale') || ''; } catch (e) { return ''; } };
  function saveLocale(tag) { try { localStorage.setItem('assent.locale', tag); } catch (e) { /* private mode */ } }

  // The listing of a party's rules in the chosen language (a saved choice the terms no longer
  // offer is forgotten).
  async function listing(base, id) {
    const saved = savedLocale();
    const path = base + encodeURIComponent(id) + '/consents';
    if (saved) {
      try { return await api('GET', path + '?locale=' + encodeURIComponent(saved)); } catch (e) {
        if (e.status !== 422) throw e;
        try { localStorage.removeItem('assent.locale'); } catch (x) { /* ignore */ }
      }
    }
    return api('GET', path);
  }

  // Sets the page's language from a listing: its words, <html lang>, and the switcher.
  function useLocale(consents, onChange) {
    lang = consents.locale || 'en';
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll('[data-words]')) node.textContent = t(node.dataset.words);
    const header = document.querySelector('header');
    if (!header || !consents.locales || consents.locales.length < 2) return;
    let picker = document.getElementById('locale');
    if (!picker) {
      picker = el('select', { id: 'locale' });
      picker.addEventListener('change', async () => { saveLocale(picker.value); await onChange(); });
      header.append(el('p', { class: 'meta locale' }, el('label', { for: 'locale', id: 'locale-label' }), ' ', picker));
    }
    document.getElementById('locale-label').textContent = t('Language');
    picker.replaceChildren(...consents.locales.map((tag) =>
      el('option', { value: tag, selected: tag === lang, text: kLanguageNames[tag] || tag })));
  }

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
    const tag = lang === 'en' ? 'en-GB' : lang;
    return d.toLocaleDateString(tag, { day: 'numeric', month: 'long', year: 'numeric' }) +
           ' ' + t('at') + ' ' + d.toLocaleTimeString(tag, { hour: '2-digit', minute: '2-digit' });
  }

  // A link that downloads the receipt of one of the party's events (JSON, verifiable offline
  // with `assent audit verify-receipt`).
  function receiptLink(kind, id, position, text) {
    const base = kind === 'account' ? '/v1/accounts/' : '/v1/subjects/';
    return el('a', { class: 'receipt', href: base + encodeURIComponent(id) + '/receipts/' + position,
                     download: 'receipt-' + position + '.json', text: t(text || 'Download receipt') });
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
      dl.append(el('dt', { text: t('Data:') + ' ' + plainName(c.name) }), dd);
    }
    for (const p of rule.purposes) {
      dl.append(el('dt', { text: t('Use:') + ' ' + plainName(p.name) }), el('dd', { text: p.description }));
    }
    const d = el('details', {}, el('summary', { text: t('What this means, and the terms behind it') }), dl);
    for (const c of rule.clauses) {
      d.append(el('p', { class: 'meta', text: t('Clause') + ' ' + c.id + (c.title ? ' — ' + c.title : '') }),
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
    const since = ev ? ' ' + t('since') + ' ' + when(ev.at) : '';
    switch (rule.state) {
      case 'granted': return t(rule.basis === 'consent' ? 'On — you agreed' : 'On') + since;
      case 'withdrawn': return t('Off — you said no') + since;
      case 'stale': return t('Off — the terms changed since you agreed; please decide again');
      case 'expired': return t('Off — your agreement expired; please decide again');
      case 'mixed': return t(rule.stale ? 'Partly off — the terms changed since you agreed; please decide again'
                                        : 'Partly on — you decided differently for parts of this');
      default: return t(rule.basis === 'consent' ? 'Off — you have not agreed' :
                                                  'On — you have not objected');
    }
  }

  async function renderChoices(kind, id, consents, history, container) {
    const events = history.events;
    container.replaceChildren();
    const mine = consents.rules.filter((r) =>
      (r.basis === 'consent' || r.basis === 'objectable') && r.state !== undefined);
    if (!mine.length) container.append(el('p', { text: t('Nothing here asks for your choice.') }));
    for (const rule of mine) {
      const on = isOn(rule);
      const label = 'sw-' + rule.rule;
      const button = el('button', {
        class: 'switch', type: 'button', role: 'switch', 'aria-checked': String(on),
        'aria-labelledby': label + '-label', 'aria-describedby': label + '-state',
        text: t(on ? 'On' : 'Off'),
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
          say(t(action === 'grant' ? 'Turned on' : 'Turned off') + ': "' + rule.summary +
              '". ' + t('Saved on') + ' ' + when(r.at) + '. ', false,
              receiptLink(kind, id, r.position, 'Download the receipt'));
          await refresh();
          const again = document.querySelector('[aria-labelledby="' + label + '-label"]');
          if (again) again.focus();
        } catch (e) {
          say(t('Not changed:') + ' ' + e.message, true);
          button.disabled = false;
        }
      });
      const note = rule.consent_from === 'account_and_subjects'
        ? el('p', { class: 'meta', text: t(kind === 'account'
            ? 'Each member must agree too; without the account, no member can switch this on.'
            : 'Your account must agree too; its admin can keep this off for everyone.') })
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
      container.append(el('p', { text: t('No choices recorded yet.') }));
      return;
    }
    const table = el('table', {}, el('caption', { class: 'visually-hidden', text: 'Your consent events' }),
      el('thead', {}, el('tr', {}, ...['When', 'What', 'Data and use', 'How', 'Receipt']
        .map((h) => el('th', { scope: 'col', text: t(h) })))));
    const body = el('tbody');
    for (const e of [...history.events].reverse()) {
      body.append(el('tr', {},
        el('td', { text: when(e.at) }),
        el('td', { text: t(e.action === 'grant' ? 'Agreed' : 'Said no') }),
        el('td', { text: e.categories.map(name).join('; ') + ' — ' + t('for') + ' ' + e.purposes.map(name).join('; ') }),
        // How it was recorded, in words (the key's name and the rest are in the receipt).
        el('td', { text: kHow[e.method] ? t(kHow[e.method]) : e.method }),
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
    const signedIn = () => { document.getElementById('who').textContent = t('Signed in as') + ' ' + id + '.'; };
    signedIn();
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
        listing('/v1/subjects/', id),
        api('GET', '/v1/subjects/' + encodeURIComponent(id) + '/history')]);
      useLocale(consents, () => refresh());
      signedIn();
      document.getElementById('terms').textContent = consents.terms;
      await renderChoices('subject', id, consents, history, document.getElementById('choices'));
      renderFixed(consents, ['necessary'], document.getElementById('needed'), 'badge',
                  t('To deliver the service you asked for:'));
      renderFixed(consents, ['prohibited'], document.getElementById('never'), 'badge never',
                  t('Never, whatever you choose:'));
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
              say(t(action === 'grant' ? 'You agreed again, under the new wording:' : 'You said no:') +
                  ' "' + rule.summary + '". ' + t('Saved on') + ' ' +
                  when(r.at) + '. ', false, receiptLink('subject', id, r.position, 'Download the receipt'));
              await refresh();
            } catch (e) {
              say(t('Not changed:') + ' ' + e.message, true);
              button.disabled = false;
            }
          };
          const yes = el('button', { type: 'button', class: 'primary', text: t('Yes, under the new wording') });
          const no = el('button', { type: 'button', text: t('No') });
          yes.addEventListener('click', () => answer('grant', yes));
          no.addEventListener('click', () => answer('withdraw', no));
          box.append(el('div', { class: 'row ask-again', role: 'group', 'aria-label': 'Ask again: ' + rule.summary },
            el('p', { text: '"' + rule.summary + '" — ' + t('do you still agree?') }), yes, no));
        }
        document.getElementById('choices').prepend(box);
      }
      const usage = await api('GET', '/v1/subjects/' + encodeURIComponent(id) + '/usage');
      const used = document.getElementById('used');
      if (!usage.datasets.length) {
        used.replaceChildren(el('p', { text: t('No recorded training dataset includes your data.') }));
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

  return { api, el, say, renderChoices, renderHistory, settingsPage, listing, useLocale,
           setCsrf: (t) => { csrf = t; }, setRefresh: (f) => { refresh = f; } };
})();

if (document.getElementById('needed')) {
  document.addEventListener('DOMContentLoaded', () => Assent.settingsPage());
}
