// Access preview, on the policy engine's explain: pick a source (device, user or tag) and see
// which devices it reaches and by which rule; pick a device and see who reaches it; and for a
// small tailnet, who reaches whom at a glance.
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@tanstack/react-query';
import { api, q, type ExplainResult, type NodeListItem, type UserInfo } from '../api';
import { useConsole } from '../main';
import { Empty, ErrorBox, Loading, Page } from '../ui';
import { useNodes } from './Machines';

const MATRIX_LIMIT = 12;

interface Row { src: NodeListItem; dst: NodeListItem; result: ExplainResult }

async function explainAll(tailnet: string, pairs: Array<[NodeListItem, NodeListItem]>, port: string, proto: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [src, dst] of pairs) {
    const result = await api<ExplainResult>('POST', `/policy/explain${q(tailnet)}`, { src: src.name, dst: `${dst.name}:${port}`, proto });
    rows.push({ src, dst, result });
  }
  return rows;
}

function Verdicts({ rows, label }: { rows: Row[]; label: string }) {
  if (rows.length === 0) return <Empty>Nothing to show.</Empty>;
  return (
    <table className="table">
      <caption>{label}</caption>
      <thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Verdict</th><th scope="col">By rule</th></tr></thead>
      <tbody>
        {rows.map((r) => (
          <tr key={`${r.src.id}-${r.dst.id}`} data-verdict={r.result.allowed ? 'allowed' : 'denied'}>
            <th scope="row">{r.src.name}</th>
            <td>{r.dst.name}</td>
            <td>{r.result.allowed ? <span className="badge ok">allowed</span> : <span className="badge warn">denied</span>}</td>
            <td>{r.result.matches.length === 0 ? (r.result.reason ?? '—') : r.result.matches.map((m) => `${m.section}[${m.index}] at ${m.location}: ${m.rule}`).join('; ')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function AccessPage() {
  const { tailnet } = useConsole();
  const nodes = useNodes(tailnet);
  const users = useQuery({ queryKey: ['users', tailnet], queryFn: async () => (await api<{ users: UserInfo[] }>('GET', `/users${q(tailnet)}`)).users });
  const [source, setSource] = useState('');
  const [target, setTarget] = useState('');
  const [port, setPort] = useState('22');
  const [proto, setProto] = useState('tcp');
  const all = nodes.data ?? [];
  const tags = [...new Set(all.flatMap((n) => n.tags))].sort();

  const sourcesFor = (ref: string): NodeListItem[] => {
    const [kind, value] = [ref.slice(0, ref.indexOf(':')), ref.slice(ref.indexOf(':') + 1)];
    if (kind === 'node') return all.filter((n) => String(n.id) === value);
    if (kind === 'user') return all.filter((n) => n.user === value && n.tags.length === 0);
    if (kind === 'tag') return all.filter((n) => n.tags.includes(value));
    return [];
  };
  const reaches = useMutation({
    mutationFn: () => {
      const srcs = sourcesFor(source);
      return explainAll(tailnet, srcs.flatMap((s) => all.filter((d) => d.id !== s.id).map((d) => [s, d] as [NodeListItem, NodeListItem])), port, proto);
    },
  });
  const reachedBy = useMutation({
    mutationFn: () => {
      const dst = all.find((n) => String(n.id) === target);
      return dst === undefined ? Promise.resolve([]) : explainAll(tailnet, all.filter((s) => s.id !== dst.id).map((s) => [s, dst] as [NodeListItem, NodeListItem]), port, proto);
    },
  });
  const matrix = useMutation({
    mutationFn: () => explainAll(tailnet, all.flatMap((s) => all.filter((d) => d.id !== s.id).map((d) => [s, d] as [NodeListItem, NodeListItem])), port, proto),
  });
  const submit = (e: FormEvent, run: () => void) => { e.preventDefault(); run(); };
  const small = all.length > 1 && all.length <= MATRIX_LIMIT;

  return (
    <Page title="Access preview">
      <p className="muted">Evaluates the policy in force against the devices of {tailnet}, as the server does.</p>
      {nodes.isPending && <Loading what="devices" />}
      <ErrorBox error={nodes.error ?? users.error} />
      {nodes.isSuccess && all.length < 2 && <Empty>Access needs at least two devices.</Empty>}
      {all.length >= 2 && (
        <>
          <div className="inline-form card">
            <label><span>Port</span><input value={port} onChange={(e) => setPort(e.target.value)} inputMode="numeric" required /></label>
            <label><span>Protocol</span>
              <select value={proto} onChange={(e) => setProto(e.target.value)}>{['tcp', 'udp', 'icmp', 'sctp'].map((p) => <option key={p}>{p}</option>)}</select>
            </label>
          </div>
          <div className="grid2">
            <form className="card" onSubmit={(e) => submit(e, () => reaches.mutate())} aria-labelledby="h-reaches">
              <h2 id="h-reaches">What does a source reach?</h2>
              <label><span>Source</span>
                <select value={source} onChange={(e) => setSource(e.target.value)} required>
                  <option value="">Choose a device, user or tag</option>
                  <optgroup label="Devices">{all.map((n) => <option key={n.id} value={`node:${n.id}`}>{n.name}</option>)}</optgroup>
                  <optgroup label="Users">{(users.data ?? []).map((u) => <option key={u.id} value={`user:${u.name}`}>{u.name}</option>)}</optgroup>
                  <optgroup label="Tags">{tags.map((t) => <option key={t} value={`tag:${t}`}>{t}</option>)}</optgroup>
                </select>
              </label>
              <button type="submit" className="primary" disabled={reaches.isPending || source === ''}>Preview</button>
              <ErrorBox error={reaches.error} />
            </form>
            <form className="card" onSubmit={(e) => submit(e, () => reachedBy.mutate())} aria-labelledby="h-reached">
              <h2 id="h-reached">Who reaches a device?</h2>
              <label><span>Device</span>
                <select value={target} onChange={(e) => setTarget(e.target.value)} required>
                  <option value="">Choose a device</option>
                  {all.map((n) => <option key={n.id} value={String(n.id)}>{n.name}</option>)}
                </select>
              </label>
              <button type="submit" className="primary" disabled={reachedBy.isPending || target === ''}>Preview</button>
              <ErrorBox error={reachedBy.error} />
            </form>
          </div>
          {reaches.data !== undefined && <Verdicts rows={reaches.data} label={`What the source reaches on ${proto}/${port}`} />}
          {reachedBy.data !== undefined && <Verdicts rows={reachedBy.data.filter((r) => r.result.allowed)} label={`Who reaches the device on ${proto}/${port}`} />}
          <section aria-labelledby="h-matrix">
            <h2 id="h-matrix">Who reaches whom</h2>
            {!small
              ? <p className="muted">For tailnets of up to {MATRIX_LIMIT} devices.</p>
              : (
                <>
                  <button type="button" onClick={() => matrix.mutate()} disabled={matrix.isPending}>Show who reaches whom on {proto}/{port}</button>
                  <ErrorBox error={matrix.error} />
                  {matrix.data !== undefined && (
                    <table className="table matrix">
                      <caption>Rows reach columns on {proto}/{port}</caption>
                      <thead><tr><th scope="col">From \ To</th>{all.map((d) => <th key={d.id} scope="col">{d.name}</th>)}</tr></thead>
                      <tbody>
                        {all.map((s) => (
                          <tr key={s.id}>
                            <th scope="row">{s.name}</th>
                            {all.map((d) => {
                              const hit = matrix.data.find((r) => r.src.id === s.id && r.dst.id === d.id);
                              return <td key={d.id}>{s.id === d.id ? '—' : hit?.result.allowed ? 'yes' : 'no'}</td>;
                            })}
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  )}
                </>
              )}
          </section>
        </>
      )}
    </Page>
  );
}
