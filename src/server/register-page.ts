// The page an AuthURL opens: it tells the person at the device what the admin must run.
import type { ServerState } from '../state/index.js';

const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

export async function renderRegisterPage(id: string, state: ServerState): Promise<{ status: number; html: string }> {
  if (!ID_RE.test(id)) return { status: 404, html: page('Unknown login', '<p>This login link is not valid.</p>') };
  const pending = await state.pending.lookup(id);
  if (pending === undefined) {
    return { status: 404, html: page('Login expired', '<p>This login is not waiting any more (it was approved, or it expired). Run <code>tailscale up</code> again on the device.</p>') };
  }
  const host = escapeHtml(pending.hostinfo.Hostname ?? 'this device');
  const command = `headway nodes register --key ${id} --user USERNAME`;
  return {
    status: 200,
    html: page('Approve this device', `<p>The device <b>${host}</b> is waiting to join the tailnet.</p>
<p>An administrator of this Headway server approves it by running:</p>
<pre>${escapeHtml(command)}</pre>
<p>Add <code>--tailnet NAME</code> for a tailnet other than <code>default</code>, or <code>--tags tag:NAME</code> instead of <code>--user</code> for a tagged device. The device finishes logging in by itself once approved.</p>`),
  };
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Headway: ${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow-x:auto}</style>
</head><body><h1>${title}</h1>${body}</body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
