// The web console in a real browser (Debian's Chromium through playwright-core) against a real
// Headway (startServer, SQLite) with our protocol clients as devices: sign in with a sign-in
// link, watch a device come online and go offline live, approve routes, edit the policy with a
// syntax error and then a valid one that reaches the devices, preview access, create a key and
// register a device with it, read the audit log (who, what, when, from where), refuse a change
// without the CSRF token and a non-admin, sign out; bulk-set tags and move a selection to another
// user; edit the settings (a bad value shows the server's message, a good one persists); and a
// big tailnet's list is virtualised and scrolls to its last device. axe-core checks every page
// (no serious or critical violations) and no page breaks the Content-Security-Policy.
//
// `npm run docs:console` runs this file with HEADWAY_CONSOLE_DOCS=1: the same run then writes a
// screenshot of every page to docs/console/ and regenerates docs/console.md.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createApiHandler } from '../../src/api/index.js';
import { sendTestRequest } from '../../src/api/testing.js';
import { NodeClient } from '../../src/client/index.js';
import { DEFAULT_CONSOLE_DIR } from '../../src/console/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';
import { seedFleet } from '../../src/bench/console.js';

const CHROMIUM = process.env['HEADWAY_CHROMIUM'] ?? '/usr/bin/chromium';
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const writeDocs = process.env['HEADWAY_CONSOLE_DOCS'] === '1';
const shotsDir = join(repoRoot, 'docs', 'console');
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const skipReason = !existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`
  : !existsSync(join(DEFAULT_CONSOLE_DIR, 'index.html')) ? 'the console is not built (npm run build)' : false;

interface Shot { file: string; title: string; caption: string }

describe('web console in a real browser', { skip: skipReason }, () => {
  let ts: TestServer;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  let profileDir: string;
  const clients: NodeClient[] = [];
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];
  const shots: Shot[] = [];
  let aliceKey = '';

  const unix = (method: string, path: string, body?: unknown) =>
    sendTestRequest({ url: ts.server.url, socketPath: ts.server.socketPath }, method, path, { transport: 'unix', ...(body !== undefined ? { body } : {}) });
  const loginLink = async (user?: string): Promise<string> => {
    const res = await unix('POST', '/api/v1/console/login-links', user === undefined ? {} : { user });
    assert.equal(res.status, 201, res.text);
    return (res.json as { url: string }).url;
  };
  const device = async (hostname: string, key: string, hostinfo: Record<string, unknown> = {}): Promise<NodeClient> => {
    const client = new NodeClient({ serverUrl: ts.server.url, hostname, capVersion: 109, hostinfo });
    await client.loginWithAuthKey(key);
    await client.startMap();
    await client.waitFor('its first netmap', (nm) => nm.self !== null);
    clients.push(client);
    return client;
  };

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    context.on('weberror', (error) => pageErrors.push(error.error().message));
    context.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    return context;
  }

  /** axe-core on the page as it is: no serious or critical violations. */
  async function checkA11y(p: Page, name: string): Promise<void> {
    await p.evaluate(`${axeSource}\n;undefined`);
    const found = await p.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run(opts: unknown): Promise<{ violations: Array<{ id: string; impact: string | null; nodes: Array<{ target: unknown }> }> }> } }).axe;
      const result = await axe.run({ resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target)) }));
    });
    const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(bad, [], `${name}: accessibility violations`);
  }

  async function visit(p: Page, hash: string, heading: string, shot?: Omit<Shot, 'title'>): Promise<void> {
    await p.goto(`${ts.server.url}/admin/#${hash}`);
    try {
      await p.getByRole('heading', { level: 1, name: heading }).waitFor({ timeout: 10_000 });
    } catch (err) {
      if (process.env['HEADWAY_CONSOLE_DEBUG'] === '1') {
        await p.screenshot({ path: join(tmpdir(), `hw-console-${hash.replace(/\W/g, '')}.png`) });
        process.stderr.write(`${p.url()}\n${(await p.content()).replace(/<style[^]*?<\/style>/g, '').slice(0, 3000)}\n`);
      }
      throw err;
    }
    await p.locator('[role=status]:has-text("Loading")').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => undefined);
    await checkA11y(p, heading);
    if (shot !== undefined) await screenshot(p, { ...shot, title: heading });
  }

  async function screenshot(p: Page, shot: Shot): Promise<void> {
    shots.push(shot);
    if (!writeDocs) return;
    mkdirSync(shotsDir, { recursive: true });
    await p.screenshot({ path: join(shotsDir, shot.file), type: 'png' });
  }

  before(async () => {
    const { chromium } = await import('playwright-core');
    ts = await startTestServer({ api: (deps) => createApiHandler({ ...deps, validateResponses: true }) });
    profileDir = await mkdtemp(join(tmpdir(), 'hw-chromium-'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
      // playwright refuses --user-data-dir with launch(); it gives every launch a fresh profile
      // directory of its own, under this one.
      artifactsDir: profileDir,
    });
    admin = await newContext();
    page = await admin.newPage();
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await ts?.cleanup();
    if (profileDir !== undefined) await rm(profileDir, { recursive: true, force: true });
    if (writeDocs && shots.length > 0) writeConsoleDoc(shots);
  });

  it('shows the sign-in page with the login-link instructions when OIDC is not configured', async () => {
    const context = await newContext();
    const anonymous = await context.newPage();
    await anonymous.goto(`${ts.server.url}/admin/`);
    await anonymous.getByRole('heading', { name: 'Sign in to Headway' }).waitFor();
    await anonymous.getByText('headway admin login-link').first().waitFor();
    assert.equal(await anonymous.getByRole('link', { name: /^Sign in with / }).count(), 0, 'no OIDC button without OIDC');
    const response = await anonymous.request.get(`${ts.server.url}/admin/`);
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await checkA11y(anonymous, 'sign-in');
    await screenshot(anonymous, { file: 'signin.png', title: 'Sign in', caption: 'Without OIDC, the sign-in page explains `headway admin login-link`.' });
    await context.close();
  });

  it('signs in with a single-use link; the link does not work twice', async () => {
    const link = await loginLink();
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'Machines' }).waitFor();
    const cookies = await admin.cookies();
    const session = cookies.find((c) => c.name === 'headway_console');
    assert.ok(session !== undefined && session.httpOnly && session.sameSite === 'Lax', 'HttpOnly, SameSite=Lax session cookie');
    const other = await newContext();
    const again = await other.newPage();
    await again.goto(link);
    await again.getByText(/already used/).waitFor();
    await other.close();
  });

  it('shows a device coming online and going offline live, without a reload', async () => {
    const alice = await ts.createUser('alice');
    const key = await ts.authKey(alice, { reusable: true });
    aliceKey = key;
    await visit(page, '/machines', 'Machines');
    await page.getByRole('status').getByText('Live', { exact: true }).waitFor();
    const laptop = await device('laptop', key);
    const row = page.locator('[data-machine="laptop"]');
    await row.getByText('Connected').waitFor({ timeout: 15_000 });
    await device('router', key, { RoutableIPs: ['10.1.0.0/24', '0.0.0.0/0', '::/0'] });
    await page.locator('[data-machine="router"]').waitFor();
    await checkA11y(page, 'machines');
    await screenshot(page, { file: 'machines.png', title: 'Machines', caption: 'Machines with live status, search, filters and bulk actions (virtualised list).' });

    const started = Date.now();
    await laptop.close();
    await row.getByText('Offline').waitFor({ timeout: 2_000 });
    const took = Date.now() - started;
    assert.ok(took < 2_000, `offline shown after ${took} ms`);
  });

  it('filters machines: exit nodes', async () => {
    await page.getByLabel('Exit node').check();
    await page.locator('[data-machine="router"]').waitFor();
    assert.equal(await page.locator('[data-machine="laptop"]').count(), 0);
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.locator('[data-machine="laptop"]').waitFor();
  });

  it('bulk-sets the tags of a selection and moves it to another user, in one call each', async () => {
    const carol = await ts.createUser('carol');
    await device('bulk-a', aliceKey);
    await device('bulk-b', aliceKey);
    const bulkNodes = () => [...ts.defaultTailnet.nodes()].filter((n) => n.hostname.startsWith('bulk-'));
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(ok(), what);
    };
    const select = async () => {
      await page.locator('[data-machine="bulk-a"]').waitFor();
      await page.getByLabel('Select bulk-a').check();
      await page.getByLabel('Select bulk-b').check();
    };
    await select();
    await page.getByRole('region', { name: 'Bulk actions' }).getByText('2 selected').waitFor();
    await page.getByRole('button', { name: 'Set tags…' }).click();
    await page.getByLabel(/Tags for every selected machine/).fill('tag:bulk');
    await checkA11y(page, 'bulk set tags dialog');
    await page.getByRole('button', { name: 'Set tags', exact: true }).click();
    await until('both nodes carry tag:bulk', () => bulkNodes().length === 2 && bulkNodes().every((n) => n.tags.join() === 'tag:bulk'));
    await select();
    await page.getByRole('button', { name: 'Move to user…' }).click();
    await page.getByLabel('Move every selected machine to').selectOption('carol');
    await page.getByRole('button', { name: 'Move', exact: true }).click();
    await until('both nodes moved to carol', () => bulkNodes().every((n) => n.userId === carol.id));
    const audit = ((await unix('GET', '/api/v1/audit?q=node.move')).json as { audit: Array<{ target: string; actor: string; from: string | null }> }).audit;
    assert.deepEqual(audit.map((e) => e.target).sort(), bulkNodes().map((n) => `node:${n.id}`).sort());
    assert.ok(audit.every((e) => e.actor === 'console:operator' && e.from === '127.0.0.1'), 'audited with who and from where');
  });

  it('approves a subnet route and the exit node on the machine page', async () => {
    await page.locator('[data-machine="router"]').getByRole('link', { name: 'router' }).click();
    await page.getByRole('heading', { level: 1, name: 'router' }).waitFor();
    await page.getByLabel('10.1.0.0/24').check();
    await page.getByLabel('0.0.0.0/0 (exit node)').check();
    await page.getByLabel('::/0 (exit node)').check();
    await page.getByRole('button', { name: 'Save route approvals' }).click();
    const routerId = [...ts.defaultTailnet.nodes()].find((n) => n.hostname === 'router')!.id;
    for (let i = 0; i < 50 && ts.defaultTailnet.node(routerId)!.approvedRoutes.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...ts.defaultTailnet.node(routerId)!.approvedRoutes].sort(), ['0.0.0.0/0', '10.1.0.0/24', '::/0']);
    await checkA11y(page, 'machine');
    await screenshot(page, { file: 'machine.png', title: 'Machine', caption: 'One machine: addresses, MagicDNS name, client, relay, key expiry, tags, routes and actions.' });
  });

  it('shows the policy error at its line while typing, then saves a valid policy that reaches the devices', async () => {
    await visit(page, '/policy', 'Access controls');
    const editor = page.locator('.cm-content');
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // No indentation: text inserted into a contenteditable turns leading spaces into no-break spaces.
    await page.keyboard.insertText('{\n"acls": [\n{ "action": "accept" "src": ["*"], "dst": ["*:*"] },\n],\n}\n');
    await page.getByText('Line 3, column 22: expected ","').waitFor();
    assert.equal(await page.locator('.problems li').count(), 1, 'one syntax error');
    assert.equal(await page.getByRole('button', { name: 'Save policy' }).isDisabled(), true, 'save is off while the text has syntax errors');

    const laptopFilterBefore = clients[1]!.netmap.packetFilter;
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText('{\n// alice reaches ssh on every device\n"acls": [\n{ "action": "accept", "src": ["alice@"], "dst": ["*:22"] },\n],\n}\n');
    await page.getByText('No syntax errors.').waitFor({ timeout: 10_000 }).catch(async (err: unknown) => {
      process.stderr.write(`editor: ${await page.locator('.cm-content').innerText()}\nproblems: ${await page.locator('.problems').innerText()}\n`);
      throw err;
    });
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByText(/Saved as version/).waitFor();
    const router = clients[1]!;
    await router.waitFor('the new packet filter', (nm) => JSON.stringify(nm.packetFilter).includes('"First":22'));
    assert.notDeepEqual(router.netmap.packetFilter, laptopFilterBefore);
    await checkA11y(page, 'policy');
    await screenshot(page, { file: 'policy.png', title: 'Access controls', caption: 'The policy editor (HuJSON, errors at line and column while typing), history with diff and rollback.' });
  });

  it('refuses a policy the server rejects and shows its message', async () => {
    await page.locator('.cm-content').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText('{ "acls": [ { "action": "accept", "src": ["group:nobody"], "dst": ["*:22"] } ] }\n');
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByText('The server refused the policy').waitFor();
    await page.getByText(/group:nobody/).first().waitFor();
  });

  it('previews access: what a device reaches and by which rule', async () => {
    await visit(page, '/access', 'Access preview');
    await page.getByRole('combobox', { name: /^Source/ }).selectOption({ label: 'router' }, { timeout: 10_000 }).catch(async (err: unknown) => {
      process.stderr.write(`access page: ${await page.locator('main').innerText()}\n`);
      throw err;
    });
    await page.getByRole('button', { name: 'Preview' }).first().click();
    const verdict = page.locator('tr[data-verdict]').first();
    await verdict.waitFor();
    assert.equal(await verdict.getAttribute('data-verdict'), 'allowed');
    assert.match(await verdict.innerText(), /acls\[0\]/);
    await checkA11y(page, 'access');
    await screenshot(page, { file: 'access.png', title: 'Access preview', caption: 'What a device, user or tag reaches and by which rule; who reaches a device; who reaches whom.' });
  });

  it('creates a pre-auth key and registers a device with it', async () => {
    await visit(page, '/keys', 'Keys');
    await page.getByLabel('User').selectOption({ label: 'alice' });
    await page.getByRole('button', { name: 'Generate key' }).click();
    const secret = (await page.locator('[data-secret]').innerText()).trim();
    assert.match(secret, /^hwkey-auth-/);
    await checkA11y(page, 'keys');
    await screenshot(page, { file: 'keys.png', title: 'Keys', caption: 'Pre-auth keys (shown once) and API keys.' });
    await device('ci-runner', secret);
    await visit(page, '/machines', 'Machines');
    await page.locator('[data-machine="ci-runner"]').getByText('Connected').waitFor();
  });

  it('lists users with their roles and devices', async () => {
    await visit(page, '/users', 'Users', { file: 'users.png', caption: 'Users with roles and devices.' });
    await page.getByRole('row', { name: /alice/ }).waitFor();
  });

  it('edits the settings: a bad value shows the server\'s message, a good one persists', async () => {
    await visit(page, '/settings', 'DNS & settings');
    await page.getByLabel('Tailnet name').fill('Acme lab');
    await page.getByLabel('Default key expiry (days)').fill('30');
    await page.getByLabel('Device approval: new devices of members wait for an admin').check();
    await page.getByLabel('Nameservers (one per line)').fill('9.9.9.9\n8.8.8');
    await page.getByLabel('Split DNS (domain: nameservers, one per line)').fill('corp.example: 10.0.0.53');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('body.dns.nameservers[1]: "8.8.8" is not an IP address or an https:// URL').first().waitFor();
    assert.equal(await page.getByLabel('Nameservers (one per line)').getAttribute('aria-invalid'), 'true');
    await checkA11y(page, 'settings with a server error');
    assert.equal(ts.defaultTailnet.settings.displayName, '', 'nothing was saved');
    await page.getByLabel('Nameservers (one per line)').fill('9.9.9.9');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    const saved = ts.defaultTailnet.settings;
    assert.equal(saved.displayName, 'Acme lab');
    assert.equal(saved.nodeExpirySeconds, 30 * 86_400);
    assert.deepEqual(saved.dns?.nameservers, ['9.9.9.9']);
    assert.deepEqual(saved.dns?.splitDns, { 'corp.example': ['10.0.0.53'] });
    assert.equal(ts.defaultTailnet.deviceApproval, true);
    // Read back after a reload: the form shows what the server kept. Approval goes off again
    // (later tests register members' devices).
    await visit(page, '/settings', 'DNS & settings', { file: 'settings.png', caption: 'Tailnet name, default key expiry, device approval and DNS, edited here; the DERP map.' });
    assert.equal(await page.getByLabel('Tailnet name').inputValue(), 'Acme lab');
    assert.equal(await page.getByLabel('Default key expiry (days)').inputValue(), '30');
    assert.equal(await page.getByLabel('Split DNS (domain: nameservers, one per line)').inputValue(), 'corp.example: 10.0.0.53');
    await page.locator('.brand').getByText('Acme lab').waitFor();
    await page.getByLabel('Device approval: new devices of members wait for an admin').uncheck();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    assert.equal(ts.defaultTailnet.deviceApproval, false);
  });

  it('shows the audit entries of what was done, searchable', async () => {
    await visit(page, '/audit', 'Audit log', { file: 'audit.png', caption: 'The audit log: who, what, when and from where; searchable.' });
    await page.getByRole('searchbox').fill('routes');
    await page.getByRole('cell', { name: /node\.routes|routes/ }).first().waitFor();
    await page.getByRole('searchbox').fill('policy');
    await page.getByText('console:operator').first().waitFor();
    // From where: the browser's address for console changes, `local` for the admin socket (CLI).
    await page.getByRole('searchbox').fill('node.move');
    await page.getByRole('row', { name: /node\.move/ }).first().getByRole('cell', { name: '127.0.0.1' }).waitFor();
    await page.getByRole('searchbox').fill('local');
    await page.getByRole('row', { name: /console\.login_link\.create/ }).first().getByRole('cell', { name: 'local', exact: true }).waitFor();
    await checkA11y(page, 'audit search');
  });

  it('refuses a change without the CSRF token', async () => {
    const status = await page.evaluate(async () => (await fetch('/api/v1/users?tailnet=default', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'mallory' }),
    })).status);
    assert.equal(status, 403);
    assert.equal([...ts.defaultTailnet.users()].some((u) => u.name === 'mallory'), false);
  });

  it('shows a member only their own devices and refuses them admin actions', async () => {
    const bob = await ts.createUser('bob');
    await device('bob-phone', await ts.authKey(bob));
    const context = await newContext();
    const member = await context.newPage();
    await member.goto(await loginLink('bob'));
    await member.getByRole('heading', { level: 1, name: 'Machines' }).waitFor();
    await member.locator('[data-machine="bob-phone"]').waitFor();
    assert.equal(await member.locator('[data-machine="router"]').count(), 0);
    assert.equal(await member.getByRole('link', { name: 'Users' }).count(), 0);
    await checkA11y(member, 'member machines');
    await screenshot(member, { file: 'member.png', title: 'A member\'s view', caption: 'A user who is not an admin sees only their own devices.' });
    const status = await member.evaluate(async () => (await fetch('/api/v1/users?tailnet=default')).status);
    assert.equal(status, 403);
    // Usable at phone width: the list still shows the device and its status, nothing overflows.
    await member.setViewportSize({ width: 390, height: 844 });
    await member.locator('[data-machine="bob-phone"]').getByText('Connected').waitFor();
    const overflow = await member.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px`);
    await checkA11y(member, 'member machines at phone width');
    await context.close();
  });

  it('signs out: the session stops working', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Headway' }).waitFor();
    const status = await page.evaluate(async () => (await fetch('/api/v1/nodes')).status);
    assert.equal(status, 401);
  });

  it('shows a device waiting for approval and approves it on its page', async () => {
    const on = await unix('PATCH', '/api/v1/tailnets/default', { settings: { device_approval: true } });
    assert.equal(on.status, 200, on.text);
    const newbie = await ts.createUser('newbie');
    await device('newbie-pc', await ts.authKey(newbie));
    const waiting = [...ts.defaultTailnet.nodes()].find((n) => n.hostname === 'newbie-pc')!;
    assert.equal(waiting.approved, false, 'a member\'s new device waits');
    const context = await newContext();
    const p = await context.newPage();
    await p.goto(await loginLink());
    await p.getByRole('heading', { level: 1, name: 'Machines' }).waitFor();
    await p.getByLabel('Awaiting approval').check();
    const row = p.locator('[data-machine="newbie-pc"]');
    await row.getByText('Needs approval').waitFor();
    await row.getByRole('link', { name: 'newbie-pc' }).click();
    await p.getByRole('button', { name: 'Approve device' }).click();
    for (let i = 0; i < 50 && ts.defaultTailnet.node(waiting.id)?.approved !== true; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(ts.defaultTailnet.node(waiting.id)?.approved, true, 'approved through the console');
    await p.getByRole('region', { name: 'Approval' }).waitFor({ state: 'detached' });
    await checkA11y(p, 'machine awaiting approval');
    await context.close();
    assert.equal((await unix('PATCH', '/api/v1/tailnets/default', { settings: { device_approval: false } })).status, 200);
  });

  it('keeps a big tailnet\'s list virtualised and scrolls to its last device', async () => {
    // 3,000 devices keep CI quick; `npm run bench -- console --devices 10000` times 10,000.
    const devices = 3_000;
    const big = await startTestServer({
      beforeStart: async (config) => { await seedFleet(config, devices); },
      api: (deps) => createApiHandler(deps),
    });
    const context = await newContext();
    try {
      const link = await sendTestRequest({ url: big.server.url, socketPath: big.server.socketPath }, 'POST', '/api/v1/console/login-links', { transport: 'unix', body: {} });
      assert.equal(link.status, 201, link.text);
      const p = await context.newPage();
      await p.goto((link.json as { url: string }).url);
      await p.getByRole('heading', { level: 1, name: 'Machines' }).waitFor();
      await p.getByText(`${devices} machines`).waitFor({ timeout: 30_000 });
      const table = p.getByRole('table', { name: 'Machines' });
      assert.equal(await table.getAttribute('aria-rowcount'), String(devices + 1));
      const rendered = await p.locator('[data-machine]').count();
      assert.ok(rendered > 0 && rendered < 100, `${rendered} rows in the page for ${devices} devices`);
      await p.locator('.vbody').evaluate((el) => { el.scrollTop = el.scrollHeight; });
      const last = p.locator(`[role=row][aria-rowindex="${devices + 1}"]`);
      await last.waitFor({ timeout: 10_000 });
      const lastName = [...big.defaultTailnet.nodes()].map((n) => n.givenName).sort().at(-1)!;
      assert.equal(await last.getAttribute('data-machine'), lastName, 'the last row is the last device by name');
      assert.ok(await p.locator('[data-machine]').count() < 100, 'still virtualised at the end');
      await checkA11y(p, 'machines of a big tailnet');
    } finally {
      await context.close();
      await big.cleanup();
    }
  });

  it('broke no Content-Security-Policy rule and threw no error on any page', () => {
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  });

});

function writeConsoleDoc(shots: Shot[]): void {
  const lines = [
    '# The web console',
    '',
    'Generated by `npm run docs:console` (test/e2e/console.test.ts with HEADWAY_CONSOLE_DOCS=1) from the same browser run that tests the console; do not edit by hand.',
    '',
    'Headway serves its admin console at `/admin` on its own listener. Sign in with OIDC when it is configured, or print a single-use link on the server:',
    '',
    '```',
    'headway admin login-link              # the operator: admin of every tailnet',
    'headway admin login-link --user alice # as a user of the tailnet, with the user\'s role',
    '```',
    '',
    'Sessions live in an HttpOnly, SameSite=Lax cookie (Secure on https) and end after 30 minutes idle, 12 hours at most, or on sign-out. Every change carries a CSRF token; the pages run under a strict Content-Security-Policy. Members (users who are not admins) see only their own devices. The console uses only the documented admin API (`/api/v1`, see docs/api.md), including `GET /api/v1/events` for live status.',
    '',
  ];
  for (const shot of shots) lines.push(`## ${shot.title}`, '', shot.caption, '', `![${shot.title}](console/${shot.file})`, '');
  writeFileSync(join(repoRoot, 'docs', 'console.md'), `${lines.join('\n')}`);
}
