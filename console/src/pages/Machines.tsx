// Machines: every device of the tailnet with live status, search and filters, a virtualised
// list (10,000 rows render only what is visible), selection and bulk actions (set tags, move to
// a user, expire, approve: one POST /nodes/bulk, one transaction; delete: one call per machine,
// with each failure named).
import { useMemo, useRef, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'wouter';
import { api, enc, q, type NodeListItem, type UserInfo } from '../api';
import { ago, offersExit, subnetRoutes } from '../format';
import { useConsole } from '../main';
import { ConfirmDialog, Empty, ErrorBox, Loading, Page, StatusDot } from '../ui';

/**
 * The machine list of a tailnet. The live stream keeps it current (and it is read afresh when
 * the stream reconnects), so it never goes stale on its own.
 */
export function nodesQuery(tailnet: string) {
  return {
    queryKey: ['nodes', tailnet],
    // The list's fields only (half the bytes of full nodes: no keys, endpoints, timestamps).
    queryFn: async () => (await api<{ nodes: NodeListItem[] }>('GET', `/nodes${q(tailnet, { view: 'list' })}`)).nodes,
    staleTime: Infinity,
  };
}

export function useNodes(tailnet: string) {
  return useQuery(nodesQuery(tailnet));
}

// Names are DNS labels (lower-case ASCII): a plain comparison sorts 10,000 of them many times
// faster than localeCompare or a collator.
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Filters { text: string; user: string; tag: string; status: string; expired: boolean; awaiting: boolean; routes: boolean; exit: boolean }
const NO_FILTERS: Filters = { text: '', user: '', tag: '', status: '', expired: false, awaiting: false, routes: false, exit: false };

function matches(n: NodeListItem, f: Filters): boolean {
  if (f.text !== '') {
    const hay = `${n.name} ${n.hostname} ${n.ipv4 ?? ''} ${n.ipv6 ?? ''} ${n.user ?? ''} ${n.tags.join(' ')} ${n.os}`.toLowerCase();
    if (!hay.includes(f.text.toLowerCase())) return false;
  }
  if (f.user !== '' && n.user !== f.user) return false;
  if (f.tag !== '' && !n.tags.includes(f.tag)) return false;
  if (f.status === 'online' && !n.online) return false;
  if (f.status === 'offline' && n.online) return false;
  if (f.expired && !n.expired) return false;
  if (f.awaiting && n.approved !== false) return false;
  if (f.routes && subnetRoutes(n.advertised_routes).length === 0) return false;
  if (f.exit && !offersExit(n.advertised_routes)) return false;
  return true;
}

const ROW_HEIGHT = 56;

const BULK_TITLES: Record<'delete' | 'expire' | 'tags' | 'move', (n: number) => string> = {
  delete: (n) => `Delete ${n} machines?`,
  expire: (n) => `Expire the keys of ${n} machines?`,
  tags: (n) => `Set the tags of ${n} machines`,
  move: (n) => `Move ${n} machines to another user`,
};
const BULK_CONFIRMS: Record<'delete' | 'expire' | 'tags' | 'move', string> = { delete: 'Delete', expire: 'Expire keys', tags: 'Set tags', move: 'Move' };

export function MachinesPage() {
  const { tailnet, session } = useConsole();
  const client = useQueryClient();
  const nodes = useNodes(tailnet);
  const users = useQuery({
    queryKey: ['users', tailnet],
    queryFn: async () => (await api<{ users: UserInfo[] }>('GET', `/users${q(tailnet)}`)).users,
    enabled: session.admin,
  });
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [confirm, setConfirm] = useState<'delete' | 'expire' | 'tags' | 'move' | null>(null);
  const [bulkTags, setBulkTags] = useState('');
  const [bulkUser, setBulkUser] = useState('');
  const all = nodes.data ?? [];
  const shown = useMemo(() => all.filter((n) => matches(n, filters)).sort((a, b) => byName(a.name, b.name)), [all, filters]);
  const tags = useMemo(() => [...new Set(all.flatMap((n) => n.tags))].sort(), [all]);
  const approvalReported = all.some((n) => n.approved !== undefined);
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({ count: shown.length, getScrollElement: () => scroller.current, estimateSize: () => ROW_HEIGHT, overscan: 12 });
  const set = (patch: Partial<Filters>) => setFilters((f) => ({ ...f, ...patch }));

  const bulk = useMutation({
    mutationFn: async (action: 'delete' | 'expire' | 'tags' | 'move' | 'approve') => {
      const ids = [...selected];
      if (action === 'approve') return void await api('POST', `/nodes/bulk${q(tailnet)}`, { action: 'approve', nodes: ids });
      if (action === 'expire') return void await api('POST', `/nodes/bulk${q(tailnet)}`, { action: 'expire', nodes: ids });
      if (action === 'tags') return void await api('POST', `/nodes/bulk${q(tailnet)}`, { action: 'set_tags', nodes: ids, tags: bulkTags.split(/[\s,]+/).filter((t) => t !== '') });
      if (action === 'move') return void await api('POST', `/nodes/bulk${q(tailnet)}`, { action: 'move', nodes: ids, user: bulkUser });
      const failures: string[] = [];
      for (const id of ids) {
        try {
          await api('DELETE', `/nodes/${id}${q(tailnet)}`);
        } catch (err) {
          failures.push(`${all.find((n) => n.id === id)?.name ?? id}: ${(err as Error).message}`);
        }
      }
      if (failures.length > 0) throw new Error(failures.join('; '));
    },
    onSettled: () => {
      setConfirm(null);
      setSelected(new Set());
      void client.invalidateQueries({ queryKey: ['nodes', tailnet] });
    },
  });
  const approveRoutes = useMutation({
    mutationFn: async () => {
      for (const id of selected) {
        const node = all.find((n) => n.id === id);
        if (node === undefined || node.advertised_routes.length === 0) continue;
        await api('POST', `/nodes/${id}/routes/approve${q(tailnet)}`, { routes: node.advertised_routes });
      }
    },
    onSettled: () => void client.invalidateQueries({ queryKey: ['nodes', tailnet] }),
  });

  const toggle = (id: number) => setSelected((s) => {
    const next = new Set(s);
    if (next.has(id)) next.delete(id); else next.add(id);
    return next;
  });
  const online = all.filter((n) => n.online).length;

  return (
    <Page title="Machines" actions={<span className="muted">{all.length} machines, {online} connected</span>}>
      <form className="filters" role="search" aria-label="Filter machines" onSubmit={(e) => e.preventDefault()}>
        <label><span>Search</span><input type="search" value={filters.text} onChange={(e) => set({ text: e.target.value })} placeholder="name, address, user, tag" /></label>
        {session.admin && (
          <label><span>User</span>
            <select value={filters.user} onChange={(e) => set({ user: e.target.value })}>
              <option value="">All users</option>
              {(users.data ?? []).map((u) => <option key={u.id} value={u.name}>{u.name}</option>)}
            </select>
          </label>
        )}
        <label><span>Tag</span>
          <select value={filters.tag} onChange={(e) => set({ tag: e.target.value })}>
            <option value="">Any tag</option>
            {tags.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
        </label>
        <label><span>Status</span>
          <select value={filters.status} onChange={(e) => set({ status: e.target.value })}>
            <option value="">Any status</option>
            <option value="online">Connected</option>
            <option value="offline">Offline</option>
          </select>
        </label>
        <label className="check"><input type="checkbox" checked={filters.expired} onChange={(e) => set({ expired: e.target.checked })} /> Key expired</label>
        {approvalReported && <label className="check"><input type="checkbox" checked={filters.awaiting} onChange={(e) => set({ awaiting: e.target.checked })} /> Awaiting approval</label>}
        <label className="check"><input type="checkbox" checked={filters.routes} onChange={(e) => set({ routes: e.target.checked })} /> Advertises routes</label>
        <label className="check"><input type="checkbox" checked={filters.exit} onChange={(e) => set({ exit: e.target.checked })} /> Exit node</label>
        {filters !== NO_FILTERS && <button type="button" onClick={() => setFilters(NO_FILTERS)}>Clear filters</button>}
      </form>

      {session.admin && selected.size > 0 && (
        <div className="bulk" role="region" aria-label="Bulk actions">
          <span>{selected.size} selected</span>
          <button type="button" onClick={() => approveRoutes.mutate()} disabled={approveRoutes.isPending}>Approve advertised routes</button>
          {approvalReported && <button type="button" onClick={() => bulk.mutate('approve')} disabled={bulk.isPending}>Approve devices</button>}
          <button type="button" onClick={() => setConfirm('tags')}>Set tags…</button>
          <button type="button" onClick={() => setConfirm('move')}>Move to user…</button>
          <button type="button" onClick={() => setConfirm('expire')}>Expire keys</button>
          <button type="button" className="danger" onClick={() => setConfirm('delete')}>Delete</button>
          <button type="button" onClick={() => setSelected(new Set())}>Clear selection</button>
        </div>
      )}
      <ErrorBox error={bulk.error ?? approveRoutes.error} title="Bulk action failed" />

      {nodes.isPending && <Loading what="machines" />}
      <ErrorBox error={nodes.error} title="Cannot load machines" />
      {nodes.isSuccess && all.length === 0 && <Empty>No machines yet. Create a pre-auth key on the Keys page and run <code>tailscale up --login-server … --authkey …</code>.</Empty>}
      {nodes.isSuccess && all.length > 0 && shown.length === 0 && <Empty>No machine matches these filters.</Empty>}
      {shown.length > 0 && (
        <div className="vtable" role="table" aria-label="Machines" aria-rowcount={shown.length + 1}>
          <div className="vrow vhead" role="row" aria-rowindex={1}>
            {session.admin && (
              <span role="columnheader" className="c-sel">
                <input type="checkbox" aria-label="Select all shown machines" checked={selected.size > 0 && selected.size === shown.length}
                  onChange={(e) => setSelected(e.target.checked ? new Set(shown.map((n) => n.id)) : new Set())} />
              </span>
            )}
            <span role="columnheader" className="c-name">Machine</span>
            <span role="columnheader" className="c-addr">Address</span>
            <span role="columnheader" className="c-user">Owner</span>
            <span role="columnheader" className="c-ver">OS / version</span>
            <span role="columnheader" className="c-seen">Status</span>
          </div>
          <div ref={scroller} className="vbody" role="rowgroup" tabIndex={0} aria-label="Machine rows (scrollable)">
            <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
              {virtual.getVirtualItems().map((item) => {
                const n = shown[item.index]!;
                return (
                  <div key={n.id} className="vrow" role="row" aria-rowindex={item.index + 2} data-machine={n.name}
                    style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}>
                    {session.admin && (
                      <span role="cell" className="c-sel">
                        <input type="checkbox" aria-label={`Select ${n.name}`} checked={selected.has(n.id)} onChange={() => toggle(n.id)} />
                      </span>
                    )}
                    <span role="cell" className="c-name">
                      <Link href={`/machines/${enc(String(n.id))}`}>{n.name}</Link>
                      <span className="sub">
                        {n.tags.map((t) => <span key={t} className="tag">{t}</span>)}
                        {n.expired && <span className="badge warn">Expired</span>}
                        {n.approved === false && <span className="badge warn">Needs approval</span>}
                        {subnetRoutes(n.advertised_routes).length > 0 && <span className="badge">Subnets</span>}
                        {offersExit(n.advertised_routes) && <span className="badge">Exit node</span>}
                      </span>
                    </span>
                    <span role="cell" className="c-addr">{n.ipv4 ?? n.ipv6 ?? '—'}</span>
                    <span role="cell" className="c-user">{n.tags.length > 0 ? 'tagged' : n.user ?? '—'}</span>
                    <span role="cell" className="c-ver">{n.os || '—'} {n.client_version.split('-')[0]}</span>
                    <span role="cell" className="c-seen"><StatusDot online={n.online} />{!n.online && <span className="sub">{ago(n.last_seen)}</span>}</span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
      )}
      <ConfirmDialog open={confirm !== null} title={BULK_TITLES[confirm ?? 'delete'](selected.size)}
        confirm={BULK_CONFIRMS[confirm ?? 'delete']} danger={confirm === 'delete'} busy={bulk.isPending || (confirm === 'move' && bulkUser === '')}
        onCancel={() => setConfirm(null)} onConfirm={() => bulk.mutate(confirm!)}>
        {confirm === 'delete' && <p>They lose access at once and must register again to come back.</p>}
        {confirm === 'expire' && <p>They are disconnected from their peers until someone runs <code>tailscale up</code> on them.</p>}
        {confirm === 'tags' && (
          <label className="field"><span>Tags for every selected machine (comma separated; empty untags them)</span>
            <input value={bulkTags} onChange={(e) => setBulkTags(e.target.value)} placeholder="tag:server" />
          </label>
        )}
        {confirm === 'move' && (
          <label className="field"><span>Move every selected machine to</span>
            <select value={bulkUser} onChange={(e) => setBulkUser(e.target.value)}>
              <option value="">Choose a user</option>
              {(users.data ?? []).map((u) => <option key={u.id} value={u.name}>{u.name}</option>)}
            </select>
          </label>
        )}
        {(confirm === 'tags' || confirm === 'move') && <p className="muted">All of them change, or none does (the server names the machine that cannot).</p>}
      </ConfirmDialog>
    </Page>
  );
}
