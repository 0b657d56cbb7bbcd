// The whole journey of one user in headless Debian Chromium, driven by
// playwright-core. t/e2e.t starts the servers (nginx with the module,
// Redis, the backend, the enrollment server) with the Perl harness and
// runs this script once per phase and language:
//
//   node e2e/journey.mjs main     enrollment STEP1-4 (the PKCS#12 downloaded
//                                 by the browser and imported into its NSS
//                                 store), sign-up, login with the initial
//                                 password, its forced change, the service,
//                                 logout, six wrong passwords, the lock
//   node e2e/journey.mjs second   another "PC" whose certificate (issued to
//                                 the same user, never signed up) is refused
//   node e2e/journey.mjs renew    the first PC follows the certificate-expiry
//                                 notice to the renewal, the new certificate
//                                 takes over, the old one is refused
//
// It prints one line per check, "ok - WHAT" or "not ok - WHAT", and
// "# ..." lines for diagnostics; t/e2e.t turns them into its own tests.
// Exit status 0 when every check passed. Everything comes in through the
// environment (see e2e/README.md); nothing is downloaded.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const phase = process.argv[2];
const env = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (dflt !== undefined) return dflt;
    throw new Error(`${name} is not set`);
  }
  return v;
};

const ORIGIN = env('E2E_ORIGIN');            // https://localhost:PORT
const LANG = env('E2E_LANG');                // ja | en
const USER = env('E2E_USER');
const WORK = env('E2E_WORK');                // a temp dir of this run
const SERVER_CA = env('E2E_SERVER_CA');      // PEM: the CA of nginx' certificate
const CHROMIUM = env('E2E_CHROMIUM', '/usr/bin/chromium');
const SHOTS = process.env.E2E_SCREENSHOTS || '';   // '' = no screenshots
const TIMEOUT = Number(env('E2E_STEP_TIMEOUT_MS', '15000'));

const SUFFIX = LANG === 'en' ? '.en' : '';

// what a person reads on the pages, in both languages
const T = {
  ja: {
    site: '証明書発行サイト',
    step1: '【STEP1】認証情報/パスワードを入力',
    step2: '【STEP2】鍵の種類とKey長を選択',
    step3: '【STEP3】証明書を受け取る',
    step4: '【STEP4】証明書の確認',
    user: 'ユーザID',
    code: '認証情報パスワード',
    next: '次へ',
    badCode: 'ユーザIDまたは認証情報パスワードが正しくありません。',
    p12pw: 'PKCS#12 パスワード',
    p12pw2: 'もう一度',
    issue: 'PKCS#12 を発行してダウンロード',
    issued: '証明書を発行しました。認証情報パスワードは使用済みになりました。',
    p12Ready: '証明書を発行しました。証明書ファイル (.p12) のダウンロードが始まります。',
    mismatch: '2つのパスワードが一致しません。',
    thisOne: 'この証明書は、今回の手続きで発行した証明書です。',
    validOne: 'この証明書は本サービスの認証局が発行した有効な証明書です。',
    signup: 'サインアップ',
    signupIntro: '通知メールに記載された「ユーザID」と',
    initial: '初期パスワード',
    signedUp: 'サインアップが完了しました。',
    login: 'ログイン',
    toLogin: 'ログインへ',
    password: 'パスワード',
    loginIntro: 'ログインするユーザIDとパスワードを入力してから',
    changeInitial: '初期パスワード変更',
    changeIntro: '初期パスワードを任意のパスワードに変更してください。',
    current: '現在のパスワード',
    newPw: '新しいパスワード',
    newPw2: '新しいパスワード（確認）',
    change: '変更する',
    tooShort: '新しいパスワードが短すぎます。必要な文字数: ',
    changed: 'パスワードを変更しました。',
    toService: 'サービスへ',
    logout: 'ログアウト',
    logoutConfirm: 'ログアウトしますか。',
    loggedOut: 'ログアウトしました。',
    badPassword: 'ユーザIDまたはパスワードが正しくありません。',
    locked: 'ユーザIDがロックされています。管理者にご連絡ください。',
    forgot: 'パスワードを忘れた方',
    notSignedUp: 'この証明書はまだサインアップされていません。',
    userBound: 'このユーザIDは別の証明書でサインアップ済みです。',
    wrongCert: 'この証明書ではこのユーザIDでログインできません。',
    serviceTop: 'サービス TOP',
    renew: '証明書の更新',
    loginPassword: 'ログインパスワード',
    renewButton: '新しい証明書を申し込む',
    diskWarning: 'ディスク使用率が 10 %を超えています',
    changePassword: 'パスワード変更',
    renewLink: '証明書を更新する',
    // the expiry notice: the date as the module writes it, then the zone
    // and the whole days left
    expiry: (date, days) => new RegExp(`^お使いの証明書の有効期限は${date}（[^）]+）`
      + `です（残り(?:${days.join('|')})日）。期限が切れる前に証明書を更新してください。$`),
    date: (d) => `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日 ${hhmm(d)}`,
  },
  en: {
    site: 'Certificate enrollment site',
    step1: '[STEP1] Enter your user ID and certificate password',
    step2: '[STEP2] Choose the key type and length',
    step3: '[STEP3] Receive the certificate',
    step4: '[STEP4] Check the certificate',
    user: 'User ID',
    code: 'Certificate password',
    next: 'Next',
    badCode: 'The user ID or certificate password is incorrect.',
    p12pw: 'PKCS#12 password',
    p12pw2: 'Again',
    issue: 'Issue and download the PKCS#12',
    issued: 'Your certificate has been issued. The certificate password has now been used.',
    p12Ready: 'Your certificate has been issued and its file (.p12) is being downloaded.',
    mismatch: 'The two passwords differ.',
    thisOne: 'This is the certificate issued in this enrollment.',
    validOne: "This certificate was issued by this service's CA and is valid.",
    signup: 'Sign up',
    signupIntro: 'Enter the user ID from the notice e-mail',
    initial: 'Initial password',
    signedUp: 'Sign-up is complete.',
    login: 'Log in',
    toLogin: 'Go to login',
    password: 'Password',
    loginIntro: 'Enter your user ID and password, then click "Log in".',
    changeInitial: 'Change your initial password',
    changeIntro: 'Please replace your initial password with one of your own.',
    current: 'Current password',
    newPw: 'New password',
    newPw2: 'New password (again)',
    change: 'Change',
    tooShort: 'The new password is too short. Minimum length: ',
    changed: 'Your password has been changed.',
    toService: 'Go to the service',
    logout: 'Log out',
    logoutConfirm: 'Do you want to log out?',
    loggedOut: 'You have been logged out.',
    badPassword: 'The user ID or password is incorrect.',
    locked: 'This user ID is locked. Please contact your administrator.',
    forgot: 'Forgot your password?',
    notSignedUp: 'This certificate has not been signed up yet.',
    userBound: 'This user ID has already been signed up with another certificate.',
    wrongCert: 'This certificate is not registered for this user ID.',
    serviceTop: 'Service top',
    renew: 'Renew your certificate',
    loginPassword: 'Login password',
    renewButton: 'Request a new certificate',
    diskWarning: 'Disk usage is over 10 %',
    changePassword: 'Change password',
    renewLink: 'Renew your certificate',
    expiry: (date, days) => new RegExp(`^Your certificate expires on ${date} \\S+ `
      + `\\((?:${days.join('|')}) days left\\)\\. Please renew it before then\\.$`),
    date: (d) => `${d.getDate()} ${d.toLocaleString('en-US', { month: 'long' })} ${d.getFullYear()}, ${hhmm(d)}`,
  },
}[LANG];
if (!T) throw new Error(`E2E_LANG must be ja or en, not ${LANG}`);

// HH:MM of a date in local time, as nginx's localtime() gives it
function hhmm(d) {
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

///////////////////////////////////////////////////////////////////////////////
// reporting

let failed = 0;
let checks = 0;

function ok(cond, what, detail) {
  checks++;
  if (cond) {
    console.log(`ok - [${LANG}] ${what}`);
    return true;
  }
  failed++;
  console.log(`not ok - [${LANG}] ${what}`);
  if (detail !== undefined) diag(detail);
  return false;
}

// a check that the rest of the journey depends on
function must(cond, what, detail) {
  if (!ok(cond, what, detail)) throw new Error(`stopped: ${what}`);
}

function diag(s) {
  for (const l of String(s).split('\n')) console.log(`# ${l}`);
}

///////////////////////////////////////////////////////////////////////////////
// the certificate store: $HOME/.pki/nssdb of a throwaway HOME, as Chromium
// on Linux reads it

function nssdb(home) {
  return 'sql:' + path.join(home, '.pki', 'nssdb');
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

// a new NSS database that trusts the server's CA for TLS (certutil -t C,,)
function makeHome(name, trust = true) {
  const home = path.join(WORK, name);
  fs.mkdirSync(path.join(home, '.pki', 'nssdb'), { recursive: true, mode: 0o700 });
  run('certutil', ['-N', '-d', nssdb(home), '--empty-password']);
  if (trust) {
    run('certutil', ['-A', '-d', nssdb(home), '-n', 'ecodoc e2e server CA',
      '-t', 'C,,', '-i', SERVER_CA]);
  }
  return home;
}

// pk12util -i FILE: the key and certificate into the browser's store
function importP12(home, file, password) {
  const pwfile = path.join(WORK, `p12pass-${process.pid}`);
  fs.writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  try {
    run('pk12util', ['-i', file, '-d', nssdb(home), '-w', pwfile]);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  return run('certutil', ['-L', '-d', nssdb(home)]);
}

// the client certificate of a PKCS#12 file, as Node's X509Certificate
function p12Certificate(file, password) {
  const pem = run('openssl', ['pkcs12', '-in', file, '-clcerts', '-nokeys',
    '-passin', `pass:${password}`]);
  const m = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/);
  if (!m) throw new Error(`no certificate in ${file}`);
  return new X509Certificate(m[0]);
}

function fingerprint(x509) {
  return x509.fingerprint256.replace(/:/g, '').toLowerCase();
}

///////////////////////////////////////////////////////////////////////////////
// the browser

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-dev-shm-usage', '--font-render-hinting=none',
  `--lang=${LANG === 'en' ? 'en-US' : 'ja'}`,
];

const DESKTOP = { width: 960, height: 720 };
const PHONE = { width: 390, height: 844 };

// launch Chromium with HOME (its NSS store) and a profile directory; the
// profile is kept across a relaunch, as a person's browser would be
async function launch(home, profile, phone = false) {
  const ctx = await chromium.launchPersistentContext(profile, {
    ...(phone ? { isMobile: true, hasTouch: true } : {}),
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    env: { ...process.env, HOME: home },
    locale: LANG === 'en' ? 'en-US' : 'ja-JP',
    viewport: phone ? PHONE : DESKTOP,
    deviceScaleFactor: 1,
    acceptDownloads: true,
    timeout: 60000,
  });
  ctx.setDefaultTimeout(TIMEOUT);
  ctx.setDefaultNavigationTimeout(TIMEOUT);
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => diag(`console: ${m.text()}`));
  return { ctx, page };
}

// values that differ from run to run (port, serial, fingerprint, dates)
// are replaced by fixed examples in the screenshot only, after the checks,
// so that a screenshot changes only when the page does
const EXAMPLE = {
  origin: 'https://localhost',
  serial: '5F3A9C0E1B2D4F6A8C0E1B2D4F6A8C0E',
  fingerprint: '3b1f0c9e5a7d2e4b6c8a0f1e3d5c7b9a1e3f5d7c9b0a2e4c6d8f0a1b3c5d7e9f',
  notAfter: { ja: '2027年12月31日 23:59 (UTC)', en: '31 December 2027, 23:59 UTC' },
  daysLeft: '396',
  // the module's expiry notice (#expiry): its date and zone, its days left
  notice: {
    ja: [/\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d（[^）]*）/, '2027年12月31日 23:59（UTC）',
      /残り\d+日/, '残り396日'],
    en: [/\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d \S+/, '31 December 2027, 23:59 UTC',
      /\(\d+ days left\)/, '(396 days left)'],
  },
};

// form controls a screen reader could not name: no <label for>, no
// wrapping <label>, no aria-label(ledby); reported as notes, not failures
async function unlabeled(page) {
  return page.evaluate(() => [...document.querySelectorAll('input, textarea, select')]
    .filter((e) => e.type !== 'hidden')
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
      && !e.getAttribute('aria-labelledby'))
    .map((e) => `<${e.tagName.toLowerCase()} name="${e.name}">`));
}

async function shot(page, name, opt = {}) {
  const bare = await unlabeled(page);
  if (bare.length) diag(`note: ${name}: no label for ${bare.join(', ')}`);
  if (!SHOTS) return;
  const file = path.join(SHOTS, `${name}${SUFFIX}.png`);
  await page.evaluate(({ origin, ex }) => {
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (n.nodeValue.includes(origin)) n.nodeValue = n.nodeValue.split(origin).join(ex.origin);
    }
    const set = (id, v) => { const e = document.getElementById(id); if (e) e.textContent = v; };
    set('serial', ex.serial);
    set('fingerprint', ex.fingerprint);
    set('not-after', ex.notAfter[document.documentElement.lang] || ex.notAfter.en);
    set('days-left', ex.daysLeft);
    const notice = document.querySelector('#expiry p');
    const nx = ex.notice[document.documentElement.lang];
    if (notice && nx) {
      notice.textContent = notice.textContent.replace(nx[0], nx[1]).replace(nx[2], nx[3]);
    }
    const pem = document.getElementById('certificate');
    if (pem) {
      // a fixed pseudo-random body of the size of an ECDSA P-256 one
      const n = 680;
      const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      let x = 12345, body = '';
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        body += b64[(x >> 16) % 64];
      }
      pem.textContent = '-----BEGIN CERTIFICATE-----\n'
        + body.replace(/.{64}/g, '$&\n').replace(/\n$/, '') + '\n-----END CERTIFICATE-----\n';
    }
    const ids = document.getElementById('identity-headers');
    if (ids) ids.textContent = ids.textContent.replace(/[0-9a-f]{64}/g, ex.fingerprint);
  }, { origin: ORIGIN, ex: EXAMPLE });
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
  diag(`screenshot ${path.relative(process.cwd(), file)}`);
}

async function heading(page, level) {
  const h = page.locator(`h${level}`).first();
  return (await h.count()) ? (await h.innerText()).trim() : '';
}

async function bodyText(page) {
  return page.locator('body').innerText();
}

// the new password's rules beside the field (#new-rules): each rule t/e2e.t
// configured (E2E_RULES, a message a line) in the page's language, and
// none of the page in the other language's words (E2E_OTHER_RULES; on the
// Japanese page no "At least one digit"), in any case
async function rules(page, where) {
  const mine = env('E2E_RULES').split('\n');
  const other = env('E2E_OTHER_RULES').split('\n');
  const items = (await page.locator('#new-rules li').allInnerTexts()).map((s) => s.trim());
  for (const r of mine) {
    ok(items.includes(r), `${where}: the rule "${r}"`, items.join(' | '));
  }
  const body = (await bodyText(page)).toLowerCase();
  for (const r of other) {
    ok(!body.includes(r.toLowerCase()), `${where}: no "${r}" (the other language's rule)`, items.join(' | '));
  }
}

// the accessible message of a page (role=alert or role=status, or the
// enrollment site's #message), or ''
async function message(page) {
  const m = page.locator('[role=alert], [role=status], #message');
  return (await m.count()) ? (await m.allInnerTexts()).join(' ').trim() : '';
}

// the names (or text) of the elements the Tab key visits, from the top of
// a page just loaded
async function tabOrder(page, n) {
  const seen = [];
  for (let i = 0; i < n; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return '';
      return e.getAttribute('name') || e.tagName.toLowerCase() + ':' + e.textContent.trim();
    }));
  }
  return seen;
}

function path_(page) {
  return new URL(page.url()).pathname;
}

///////////////////////////////////////////////////////////////////////////////
// phase "main"

async function main() {
  const code = env('E2E_CODE');
  const initial = env('E2E_INITIAL');
  const fresh = env('E2E_NEW_PASSWORD');
  const p12pw = env('E2E_P12_PASSWORD');
  const home = makeHome(`home-${LANG}`);
  const profile = path.join(WORK, `profile-${LANG}`);

  // --- enrollment STEP1-3, no client certificate yet
  let { ctx, page } = await launch(home, profile);
  let p12file;
  try {
    const resp = await page.goto(`${ORIGIN}/enroll/`);
    must(resp && resp.status() === 200, 'the enrollment site answers 200 over TLS the browser trusts');
    ok(await heading(page, 1) === T.site, `enrollment: the heading "${T.site}"`, await heading(page, 1));
    ok(await heading(page, 2) === T.step1, `STEP1: the heading "${T.step1}"`, await heading(page, 2));
    ok(await page.locator('html').getAttribute('lang') === LANG, `STEP1: <html lang="${LANG}">`);
    ok(await page.locator('meta[name=viewport]').count() === 1, 'STEP1: a viewport for phones');
    await shot(page, '01-enroll-step1');

    // by keyboard, on the page just loaded: Tab visits each field in order
    const order = await tabOrder(page, 3);
    ok(order.join(' ') === `user password button:${T.next}`, 'STEP1: Tab visits user ID, certificate password, the button', order.join(' | '));

    // a wrong certificate password first: the message beside the field, the
    // user ID kept, and nothing used up
    await page.getByLabel(T.user).fill(USER);
    await page.getByLabel(T.code).fill('wrong-' + code);
    await page.getByRole('button', { name: T.next }).click();
    ok((await message(page)).includes(T.badCode), `STEP1 with a wrong certificate password: "${T.badCode}"`, await bodyText(page));
    ok(await heading(page, 2) === T.step1, 'STEP1: still STEP1');
    ok(await page.locator('#password-error').count() === 1, 'STEP1: the message is beside the certificate password field');
    ok(await page.getByLabel(T.code).getAttribute('aria-describedby') === 'password-error', 'STEP1: the field points at its error (aria-describedby)');
    ok(await page.getByLabel(T.user).inputValue() === USER, `STEP1: the user ID ${USER} is kept`);
    await shot(page, '02-enroll-step1-error');

    // by keyboard: the focus is on the certificate password, Enter submits
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute('name'));
    ok(focused === 'password', 'STEP1: the focus is on the certificate password field', focused);
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/enroll\/step2$/).catch(() => {});
    must(path_(page) === '/enroll/step2', 'STEP1 with the certificate password: on to STEP2', page.url());
    ok(await heading(page, 2) === T.step2, `STEP2: the heading "${T.step2}"`, await heading(page, 2));
    const radios = page.getByRole('radio');
    ok(await radios.count() >= 2, `STEP2: ${await radios.count()} key types to choose from`);
    ok(await radios.first().isChecked(), 'STEP2: the first key type is chosen already');
    const keyLabel = (await page.locator('label:has(input[type=radio]:checked)').innerText()).trim();
    ok(/P-256/.test(keyLabel), `STEP2: the default key is ECDSA P-256 ("${keyLabel}")`);
    await shot(page, '03-enroll-step2');

    await page.getByRole('button', { name: T.next }).click();
    must(path_(page) === '/enroll/step3', 'STEP2: on to STEP3', page.url());
    ok(await heading(page, 2) === T.step3, `STEP3: the heading "${T.step3}"`, await heading(page, 2));
    await shot(page, '04-enroll-step3');

    // two passwords that differ first: refused beside the field
    await page.getByLabel(T.p12pw).fill(p12pw);
    await page.getByLabel(T.p12pw2).fill(`${p12pw}-other`);
    await page.locator('form:has([name=p12pw])').getByRole('button', { name: T.issue }).click();
    ok((await bodyText(page)).includes(T.mismatch), `STEP3: two passwords that differ: "${T.mismatch}"`, await bodyText(page));

    await page.getByLabel(T.p12pw).fill(p12pw);
    await page.getByLabel(T.p12pw2).fill(p12pw);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      // two forms here (PKCS#12 and CSR), each with its own button
      page.locator('form:has([name=p12pw])').getByRole('button', { name: T.issue }).click(),
    ]);
    ok(download.suggestedFilename() === `${USER}.p12`, `STEP3: the browser downloads ${USER}.p12`, download.suggestedFilename());
    p12file = path.join(WORK, `download-${LANG}-${download.suggestedFilename()}`);
    await download.saveAs(p12file);
    must(fs.statSync(p12file).size > 500, `STEP3: the PKCS#12 file is there (${fs.statSync(p12file).size} bytes)`);

    // no reload: the form was answered with the page that started the
    // download, which says what happened and what comes next
    must(path_(page) === '/enroll/step3', 'STEP3: the result page', page.url());
    ok((await bodyText(page)).includes(T.p12Ready), `STEP3 after the download, without a reload: "${T.p12Ready}"`, await bodyText(page));
    ok(await page.locator('form').count() === 0, 'STEP3: no form left on screen');
    ok(!(await bodyText(page)).includes(T.mismatch), 'STEP3: no earlier error kept');
    ok(await page.locator('#certificate').count() === 0 && await page.locator('a[href$="certificate.pem"]').count() === 0,
      'STEP3: no bare certificate PEM offered beside the PKCS#12');
    ok(await page.locator('a[href$="certificate.p12"]').count() === 1, 'STEP3: a link to the .p12 again');
    ok(await page.getByRole('link', { name: /STEP4/ }).count() > 0, 'STEP3: a link to STEP4');
    ok((await bodyText(page)).includes('Chrome (Linux)'), 'STEP3: how to import the file, Chrome on Linux among them');
    await shot(page, '05-enroll-step3-issued');
  } finally {
    await ctx.close();
  }

  // --- into the browser's NSS store, then the browser again
  const cert = p12Certificate(p12file, p12pw);
  const fp = fingerprint(cert);
  ok(cert.subject.split('\n').includes(`CN=${USER}`), `the PKCS#12 holds a certificate for CN=${USER}`, cert.subject);
  const list = importP12(home, p12file, p12pw);
  ok(list.includes('u,u,u'), 'pk12util: the key and certificate are in $HOME/.pki/nssdb', list);

  ({ ctx, page } = await launch(home, profile));
  try {
    // --- STEP4: the page that needs the certificate
    await page.goto(`${ORIGIN}/enroll/step4`);
    ok(await heading(page, 2) === T.step4, `STEP4: the heading "${T.step4}"`, await bodyText(page));
    const shown = (await page.locator('#fingerprint').innerText()).trim();
    must(shown === fp, 'STEP4: the browser presented the imported certificate (its fingerprint is shown)', `${shown} != ${fp}`);
    ok((await page.locator('#subject').innerText()).includes(`CN = ${USER}`), `STEP4: the subject names CN = ${USER}`);
    const serial = (await page.locator('#serial').innerText()).trim();
    ok(serial === cert.serialNumber.toUpperCase(), `STEP4: the serial ${serial}`, cert.serialNumber);
    const na = (await page.locator('#not-after').innerText()).trim();
    ok(LANG === 'en' ? /^\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC$/.test(na) : /^\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d \(UTC\)$/.test(na),
      `STEP4: the expiry as a date in the page's language ("${na}")`);
    const verdict = await bodyText(page);
    ok(verdict.includes(T.thisOne) || verdict.includes(T.validOne), 'STEP4: the certificate is the one just issued, or a valid one of this CA', verdict);
    await shot(page, '06-enroll-step4');

    // --- sign-up, through the link STEP4 gives
    const signupLink = page.locator('a[href$="/ecodoc/signup"]');
    must(await signupLink.count() > 0, 'STEP4: a link to the sign-up page');
    await signupLink.first().click();
    must(path_(page) === '/ecodoc/signup', 'the sign-up page', page.url());
    ok(await heading(page, 1) === T.signup, `sign-up: the heading "${T.signup}"`, await heading(page, 1));
    ok((await bodyText(page)).includes(T.signupIntro), 'sign-up: what to enter');
    await shot(page, '07-signup');
    await page.getByLabel(T.user, { exact: true }).fill(USER);
    await page.getByLabel(T.initial, { exact: true }).fill(initial);
    await page.getByRole('button', { name: T.signup }).click();
    ok((await message(page)).includes(T.signedUp), `sign-up: "${T.signedUp}"`, await bodyText(page));
    await shot(page, '08-signup-done');

    // --- the service asks for a login first
    await page.goto(`${ORIGIN}/`);
    must(path_(page) === '/ecodoc/login', 'the service without a session: the login page', page.url());
    ok(await heading(page, 1) === T.login, `login: the heading "${T.login}"`, await heading(page, 1));
    ok((await bodyText(page)).includes(T.loginIntro), 'login: what to enter');
    ok(await page.locator('meta[name=viewport]').count() === 1, 'login: a viewport for phones');
    ok(await page.locator('html').getAttribute('lang') === LANG, `login: <html lang="${LANG}">`);
    ok(await page.getByRole('link', { name: T.forgot }).count() > 0, `login: a "${T.forgot}" link`);
    await shot(page, '09-login');

    // --- login with the initial password, by keyboard: only the change is served
    const order = await tabOrder(page, 4);
    ok(order.join(' | ') === `user | password | button:${T.login} | a:${T.forgot}`, 'login: Tab visits user ID, password, the button, the forgot link', order.join(' | '));
    await page.getByLabel(T.user, { exact: true }).click();
    await page.keyboard.type(USER);
    await page.keyboard.press('Tab');
    await page.keyboard.type(initial);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ecodoc\/password$/).catch(() => {});
    must(path_(page) === '/ecodoc/password', 'login with the initial password: the forced password change', page.url());
    ok(await heading(page, 1) === T.changeInitial, `password: the heading "${T.changeInitial}"`, await heading(page, 1));
    ok((await bodyText(page)).includes(T.changeIntro), 'password: why');
    ok((await page.locator('#user').innerText()).trim() === USER, `password: the user ID ${USER} is shown`);
    ok(await page.locator('#expiry').count() === 0, 'password: no certificate-expiry notice a year before the expiry (ecodoc_cert_expiry_notice 30 by default)');
    await rules(page, 'password');
    await shot(page, '10-password-initial');
    await page.goto(`${ORIGIN}/`);
    ok(path_(page) === '/ecodoc/password', 'the service before the change: back to the password page', page.url());

    // a new password that breaks the rule: the error beside the field
    await page.getByLabel(T.current, { exact: true }).fill(initial);
    await page.getByLabel(T.newPw, { exact: true }).fill('short1');
    await page.getByLabel(T.newPw2, { exact: true }).fill('short1');
    await page.getByRole('button', { name: T.change }).click();
    const err = page.locator('#new-error');
    ok(await err.count() === 1 && (await err.innerText()).startsWith(T.tooShort), `password too short: "${T.tooShort}…" beside the field`, await bodyText(page));
    const described = await page.getByLabel(T.newPw, { exact: true }).getAttribute('aria-describedby');
    ok(described === 'new-error new-rules', 'password too short: the field points at its error and the rules (aria-describedby)', described);
    await rules(page, 'password too short');
    await shot(page, '11-password-error');

    await page.getByLabel(T.current, { exact: true }).fill(initial);
    await page.getByLabel(T.newPw, { exact: true }).fill(fresh);
    await page.getByLabel(T.newPw2, { exact: true }).fill(fresh);
    await page.getByRole('button', { name: T.change }).click();
    ok((await message(page)).includes(T.changed), `password: "${T.changed}"`, await bodyText(page));
    await shot(page, '12-password-changed');

    // --- the service: サービス TOP of the demo backend
    const toService = page.getByRole('link', { name: T.toService });
    if (await toService.count()) await toService.first().click();
    else await page.goto(`${ORIGIN}/`);
    must(path_(page) === '/', 'the service itself', page.url());
    ok(await heading(page, 1) === T.serviceTop, `service: the heading "${T.serviceTop}"`, await bodyText(page));
    ok((await page.locator('#welcome').innerText()).includes(USER), `service: welcomes ${USER}`);
    const cells = (await page.locator('#usage tr').nth(1).locator('td').allInnerTexts()).map((s) => s.trim());
    ok(cells[0] === '150GB', `service: contract capacity ${cells[0]}`);
    ok(cells[1] === '55.0GB', `service: data used ${cells[1]}`);
    ok(cells[2] === '36.7', `service: use ${cells[2]} %`);
    ok((await page.locator('#warning').innerText()).includes(T.diskWarning), 'service: the warning above 10 %');
    if (await page.locator('meta[name=viewport]').count() === 0) diag('note: the backend page has no <meta name="viewport">: phones lay it out 980 px wide');
    const ids = await page.locator('#identity-headers').innerText();
    ok(ids.includes(`X-Ecodoc-User: ${USER}`), `service: the backend was told X-Ecodoc-User: ${USER}`, ids);
    ok(ids.toLowerCase().includes(fp), 'service: ... and the fingerprint of the certificate', ids);
    await shot(page, '13-service-top');
    if (LANG === 'ja') await phoneShots(home, await ctx.cookies());

    // --- logout
    await page.goto(`${ORIGIN}/ecodoc/logout`);
    ok((await bodyText(page)).includes(T.logoutConfirm), `logout: "${T.logoutConfirm}"`, await bodyText(page));
    await shot(page, '14-logout');
    await page.getByRole('button', { name: T.logout }).click();
    ok((await message(page)).includes(T.loggedOut), `logout: "${T.loggedOut}"`, await bodyText(page));
    await shot(page, '15-logged-out');
    await page.goto(`${ORIGIN}/`);
    ok(path_(page) === '/ecodoc/login', 'after logout the service asks for a login again', page.url());

    // --- six wrong passwords: the sixth locks the user ID
    for (let i = 1; i <= 6; i++) {
      await page.goto(`${ORIGIN}/ecodoc/login`);
      await page.getByLabel(T.user, { exact: true }).fill(USER);
      await page.getByLabel(T.password, { exact: true }).fill(`Wrong-${i}-password`);
      await page.getByRole('button', { name: T.login }).click();
      const m = await message(page);
      if (i < 6) {
        ok(m.includes(T.badPassword), `wrong password ${i}: "${T.badPassword}"`, await bodyText(page));
        if (i === 1) {
          const e = page.locator('#password-error');
          ok(await e.count() === 1, 'wrong password: the message is beside the password field');
          await shot(page, '16-login-wrong-password');
        }
      } else {
        ok(m.includes(T.locked), `wrong password 6: "${T.locked}"`, await bodyText(page));
        await shot(page, '17-locked');
      }
    }
    await page.goto(`${ORIGIN}/ecodoc/login`);
    await page.getByLabel(T.user, { exact: true }).fill(USER);
    await page.getByLabel(T.password, { exact: true }).fill(fresh);
    await page.getByRole('button', { name: T.login }).click();
    ok((await message(page)).includes(T.locked), 'the right password after the lock: still locked', await bodyText(page));
    ok(path_(page) === '/ecodoc/login', '... and no way into the service');
  } finally {
    await ctx.close();
  }
}

// the same pages on a phone (a mobile viewport 390 px wide): the same
// certificate store, a profile of its own, the session's cookies
async function phoneShots(home, cookies) {
  const { ctx, page } = await launch(home, path.join(WORK, `profile-phone-${LANG}`), true);
  try {
    await ctx.addCookies(cookies);
    await page.goto(`${ORIGIN}/enroll/`);
    ok(await heading(page, 2) === T.step1, 'phone: STEP1');
    await shot(page, '01-enroll-step1.phone', { phone: true });
    await page.goto(`${ORIGIN}/ecodoc/login`);
    ok(await heading(page, 1) === T.login, 'phone: the login page');
    await shot(page, '09-login.phone', { phone: true });
    await page.goto(`${ORIGIN}/`);
    ok(await heading(page, 1) === T.serviceTop, `phone: ${T.serviceTop} with the same session`);
    await shot(page, '13-service-top.phone', { phone: true });
  } finally {
    await ctx.close();
  }
}

///////////////////////////////////////////////////////////////////////////////
// phase "second": another PC, with a certificate for the same user ID from
// the same CA that was never signed up

async function second() {
  // first, without the test CA in the store: the server's certificate is
  // refused, so the trust the other browsers have is the store's, not a flag
  {
    const { ctx, page } = await launch(makeHome(`home0-${LANG}`, false), path.join(WORK, `profile0-${LANG}`));
    try {
      const err = await page.goto(`${ORIGIN}/enroll/`).then(() => '', (e) => e.message);
      ok(/ERR_CERT_AUTHORITY_INVALID/.test(err), 'a browser that does not trust the test CA refuses the server', err || 'it loaded');
    } finally {
      await ctx.close();
    }
  }

  const p12 = env('E2E_SECOND_P12');
  const p12pw = env('E2E_SECOND_P12_PASSWORD');
  const fresh = env('E2E_NEW_PASSWORD');
  const home = makeHome(`home2-${LANG}`);
  const list = importP12(home, p12, p12pw);
  ok(list.includes('u,u,u'), 'pk12util: the second certificate is in the other browser\'s store', list);
  const fp = fingerprint(p12Certificate(p12, p12pw));

  const { ctx, page } = await launch(home, path.join(WORK, `profile2-${LANG}`));
  try {
    await page.goto(`${ORIGIN}/enroll/step4`);
    must((await page.locator('#fingerprint').innerText()).trim() === fp, 'STEP4 in the other browser: the second certificate is presented');

    await page.goto(`${ORIGIN}/`);
    must(path_(page) === '/ecodoc/signup', 'the service with a certificate never signed up: the sign-up page', page.url());
    ok((await bodyText(page)).includes(T.notSignedUp) || (await heading(page, 1)) === T.signup, 'sign-up page: the certificate is not signed up', await bodyText(page));

    await page.goto(`${ORIGIN}/ecodoc/login`);
    await page.getByLabel(T.user, { exact: true }).fill(USER);
    await page.getByLabel(T.password, { exact: true }).fill(fresh);
    await page.getByRole('button', { name: T.login }).click();
    ok((await message(page)).includes(T.wrongCert), `login with the right password and the second certificate: "${T.wrongCert}"`, await bodyText(page));
    ok(path_(page) === '/ecodoc/login', '... no way into the service');
    await shot(page, '18-second-certificate-login');

    await page.goto(`${ORIGIN}/ecodoc/signup`);
    await page.getByLabel(T.user, { exact: true }).fill(USER);
    await page.getByLabel(T.initial, { exact: true }).fill(fresh);
    await page.getByRole('button', { name: T.signup }).click();
    ok((await message(page)).includes(T.userBound), `sign-up with the second certificate: "${T.userBound}"`, await bodyText(page));
    await shot(page, '19-second-certificate-signup');

    await page.goto(`${ORIGIN}/`);
    ok(path_(page) === '/ecodoc/signup', 'the service is still out of reach', page.url());
  } finally {
    await ctx.close();
  }
}

///////////////////////////////////////////////////////////////////////////////
// phase "renew": the first PC renews its certificate from the enrollment
// site with the password again; the new certificate signs up and takes
// over; the old one is refused

async function login(page, password) {
  await page.goto(`${ORIGIN}/ecodoc/login`);
  await page.getByLabel(T.user, { exact: true }).fill(USER);
  await page.getByLabel(T.password, { exact: true }).fill(password);
  await page.getByRole('button', { name: T.login }).click();
}

// whole days left until a date, as the module counts them
function daysLeft(end) {
  return Math.max(0, Math.floor((end.getTime() - Date.now()) / 86400000));
}

// the module's certificate-expiry notice on the password page: inside
// <main>, above the page's own content, the date and the days left in the
// page's language, and the link to the renewal; returns that link
async function expiryNotice(page, end, where) {
  const days = [daysLeft(end)];
  await page.goto(`${ORIGIN}/ecodoc/password`);
  days.push(daysLeft(end));
  must(path_(page) === '/ecodoc/password', `${where}: the password page`, page.url());
  ok(await heading(page, 1) === T.changePassword, `${where}: the heading "${T.changePassword}"`, await heading(page, 1));
  const notice = page.locator('#expiry');
  must(await notice.count() === 1, `${where}: on the page (ecodoc_cert_expiry_notice 400, the certificate lasts 397 days)`, await bodyText(page));
  ok(await page.locator('main > h1 + #expiry.notice').count() === 1, `${where}: in <main>, right below the heading`);
  const text = (await notice.locator('p').first().innerText()).trim();
  const re = T.expiry(T.date(end), days);
  ok(re.test(text), `${where}: "${text}"`, `${text} !~ ${re}`);
  const link = notice.getByRole('link', { name: T.renewLink, exact: true });
  ok(await link.count() === 1, `${where}: a link "${T.renewLink}"`, await notice.innerHTML());
  ok(await link.getAttribute('href') === '/enroll/renew', `${where}: the link is ecodoc_renewal_url, /enroll/renew`, await link.getAttribute('href'));
  await rules(page, where);
  return link;
}

async function renew() {
  const fresh = env('E2E_NEW_PASSWORD');
  const p12pw = env('E2E_RENEW_P12_PASSWORD');
  const home = path.join(WORK, `home-${LANG}`);
  const profile = path.join(WORK, `profile-${LANG}`);
  const p12file = path.join(WORK, `renewed-${LANG}.p12`);
  // the certificate "main" downloaded: when it expires
  const current = p12Certificate(path.join(WORK, `download-${LANG}-${USER}.p12`), env('E2E_P12_PASSWORD'));
  const end = new Date(current.validTo);

  // the first PC, its certificate as "main" left it
  let { ctx, page } = await launch(home, profile);
  try {
    await login(page, fresh);
    must(await heading(page, 1) === T.serviceTop, `renewal: logged in with the current certificate (${T.serviceTop})`, await bodyText(page));

    // the module's pages tell of the expiry (t/e2e.t reloaded nginx with
    // the notice from 400 days before it) and lead to the renewal
    const link = await expiryNotice(page, end, 'expiry notice');
    await shot(page, '19a-expiry-notice');
    if (LANG === 'ja') await phoneNotice(home, await ctx.cookies(), end);
    await link.click();
    await page.waitForURL(/\/enroll\/renew$/).catch(() => {});
    must(path_(page) === '/enroll/renew', 'expiry notice: its link leads to the renewal page', page.url());
    ok(await heading(page, 2) === T.renew, `renewal: the heading "${T.renew}"`, await bodyText(page));
    ok((await page.locator('#user').innerText()).trim() === USER, `renewal: the user ID ${USER}`);
    ok((await page.locator('#not-after').innerText()).trim().length > 0, 'renewal: the current certificate\'s expiry');
    await shot(page, '20-renew');
    await page.getByLabel(T.loginPassword).fill(fresh);
    await page.getByRole('button', { name: T.renewButton }).click();
    must(path_(page) === '/enroll/step2', 'renewal with the password: on to STEP2, no certificate password asked', page.url());
    await page.getByRole('button', { name: T.next }).click();
    must(path_(page) === '/enroll/step3', 'renewal: STEP3', page.url());
    await page.getByLabel(T.p12pw).fill(p12pw);
    await page.getByLabel(T.p12pw2).fill(p12pw);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('form:has([name=p12pw])').getByRole('button', { name: T.issue }).click(),
    ]);
    await download.saveAs(p12file);
    ok((await bodyText(page)).includes(T.p12Ready), `renewal: "${T.p12Ready}"`, await bodyText(page));
    await shot(page, '21-renew-issued');
    await page.goto(`${ORIGIN}/`);
    ok(await heading(page, 1) === T.serviceTop, 'renewal: the current certificate still works meanwhile');
  } finally {
    await ctx.close();
  }

  // the new certificate in a store of its own (with both in one store,
  // Chromium's policy would pick either)
  const home2 = makeHome(`home-renewed-${LANG}`);
  const list = importP12(home2, p12file, p12pw);
  ok(list.includes('u,u,u'), 'pk12util: the renewed certificate is in the store', list);
  const fp = fingerprint(p12Certificate(p12file, p12pw));
  ({ ctx, page } = await launch(home2, path.join(WORK, `profile-renewed-${LANG}`)));
  try {
    await page.goto(`${ORIGIN}/`);
    must(path_(page) === '/ecodoc/signup', 'the renewed certificate: the sign-up page', page.url());
    await page.getByLabel(T.user, { exact: true }).fill(USER);
    await page.getByLabel(T.initial, { exact: true }).fill(fresh);
    await page.getByRole('button', { name: T.signup }).click();
    ok((await message(page)).includes(T.signedUp), `the renewed certificate signs up with the password: "${T.signedUp}"`, await bodyText(page));
    await login(page, fresh);
    ok(await heading(page, 1) === T.serviceTop, `the renewed certificate in use: ${T.serviceTop}`, await bodyText(page));
    const ids = await page.locator('#identity-headers').innerText();
    ok(ids.toLowerCase().includes(fp), 'the service sees the renewed certificate\'s fingerprint', ids);
    await shot(page, '22-renewed-in-use');
  } finally {
    await ctx.close();
  }

  // the first PC's old certificate: revoked when the new one signed up
  ({ ctx, page } = await launch(home, profile));
  try {
    const res = await page.goto(`${ORIGIN}/`);
    ok(res.status() === 403, `the old certificate after the takeover: 403 (${res.status()})`);
    await shot(page, '23-renewed-old-certificate');
  } finally {
    await ctx.close();
  }
}

// the expiry notice on a phone: it fits the 390 px without scrolling sideways
async function phoneNotice(home, cookies, end) {
  const { ctx, page } = await launch(home, path.join(WORK, `profile-phone-${LANG}`), true);
  try {
    await ctx.addCookies(cookies);
    await expiryNotice(page, end, 'phone: expiry notice');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    ok(wide <= PHONE.width, `phone: the page with the notice is ${wide} px wide, no wider than the screen`);
    await shot(page, '19a-expiry-notice.phone', { phone: true });
  } finally {
    await ctx.close();
  }
}

///////////////////////////////////////////////////////////////////////////////

const phases = { main, second, renew };
if (!phases[phase]) {
  console.error('usage: node e2e/journey.mjs main|second|renew');
  process.exit(2);
}
if (SHOTS) fs.mkdirSync(SHOTS, { recursive: true });

try {
  await phases[phase]();
} catch (e) {
  failed++;
  console.log(`not ok - [${LANG}] ${phase}: ${e.message.split('\n')[0]}`);
  diag(e.stack || e.message);
}
console.log(`# ${LANG} ${phase}: ${checks} checks, ${failed} failed`);
process.exit(failed ? 1 : 0);
