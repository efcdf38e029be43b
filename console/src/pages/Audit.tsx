// The audit log: who did what, when and from where; searchable on the server.
import { useEffect, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api, type AuditEntry } from '../api';
import { when } from '../format';
import { useConsole } from '../main';
import { Empty, ErrorBox, Loading, Page } from '../ui';

export function AuditPage() {
  const { tailnet, session } = useConsole();
  const [text, setText] = useState('');
  const [search, setSearch] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => setSearch(text.trim()), 250);
    return () => clearTimeout(timer);
  }, [text]);
  const params = new URLSearchParams({ limit: '500' });
  if (session.tailnet !== null) params.set('tailnet', tailnet);
  if (search !== '') params.set('q', search);
  const audit = useQuery({ queryKey: ['audit', tailnet, search], queryFn: async () => (await api<{ audit: AuditEntry[] }>('GET', `/audit?${params.toString()}`)).audit });
  return (
    <Page title="Audit log">
      <form role="search" className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Search the audit log">
        <label><span>Search</span><input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="actor, address, action, target, details" /></label>
      </form>
      {audit.isPending && <Loading what="the audit log" />}
      <ErrorBox error={audit.error} />
      {audit.isSuccess && audit.data.length === 0 && <Empty>{search === '' ? 'No entries yet.' : `No entry matches “${search}”.`}</Empty>}
      {audit.isSuccess && audit.data.length > 0 && (
        <table className="table audit">
          <caption className="sr-only">Audit entries, newest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">From</th><th scope="col">What</th><th scope="col">Target</th><th scope="col">Details</th></tr></thead>
          <tbody>
            {audit.data.map((e) => (
              <tr key={e.id}>
                <td>{when(e.created_at)}</td>
                <th scope="row">{e.actor}</th>
                <td className="mono">{e.from ?? <span className="muted">server</span>}</td>
                <td className="mono">{e.action}</td>
                <td>{e.target}{e.tailnet !== null && session.tailnet === null && <span className="sub">{e.tailnet}</span>}</td>
                <td className="details">{Object.keys(e.details).length === 0 ? '—' : JSON.stringify(e.details)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
