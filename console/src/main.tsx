// The app shell: the session (who is signed in, the CSRF token), the live event stream that
// keeps the machine list current, navigation, and the routes of the pages. The machine pages
// are in the first bundle; the others (the policy editor's CodeMirror above all) load when
// first visited, so the machine list of a big tailnet paints sooner.
import { StrictMode, Suspense, createContext, lazy, useContext, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { MutationCache, QueryCache, QueryClient, QueryClientProvider, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, Redirect, Route, Router, Switch, useLocation } from 'wouter';
import { useHashLocation } from 'wouter/use-hash-location';
import { api, ApiError, q, setCsrfToken, type NodeInfo, type NodeListItem, type Session, type Settings } from './api';
import { ErrorBox, Loading } from './ui';
import { SignInPage } from './pages/SignIn';
import { MachinesPage, nodesQuery } from './pages/Machines';
import { MachinePage } from './pages/Machine';

const UsersPage = lazy(() => import('./pages/Users').then((m) => ({ default: m.UsersPage })));
const KeysPage = lazy(() => import('./pages/Keys').then((m) => ({ default: m.KeysPage })));
const PolicyPage = lazy(() => import('./pages/Policy').then((m) => ({ default: m.PolicyPage })));
const AccessPage = lazy(() => import('./pages/Access').then((m) => ({ default: m.AccessPage })));
const SettingsPage = lazy(() => import('./pages/Settings').then((m) => ({ default: m.SettingsPage })));
const AuditPage = lazy(() => import('./pages/Audit').then((m) => ({ default: m.AuditPage })));
import './styles.css';

export interface ConsoleContext {
  session: Session;
  tailnet: string;
}

const Ctx = createContext<ConsoleContext | null>(null);
export function useConsole(): ConsoleContext {
  const value = useContext(Ctx);
  if (value === null) throw new Error('useConsole outside the signed-in console');
  return value;
}

// A 401 means the session ended (sign-out elsewhere, idle timeout): re-read it, which sends the
// browser to the sign-in page with the app's state intact.
const sessionEnded = (error: unknown) => {
  if (error instanceof ApiError && error.status === 401) void queryClient.invalidateQueries({ queryKey: ['session'] });
};
const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError: sessionEnded }),
  mutationCache: new MutationCache({ onError: sessionEnded }),
  defaultOptions: {
    queries: {
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

/** Applies the server's live events to the cached machine list: no reload, no refetch. */
function useLiveEvents(tailnet: string): 'live' | 'reconnecting' {
  const client = useQueryClient();
  const [status, setStatus] = useState<'live' | 'reconnecting'>('reconnecting');
  useEffect(() => {
    const source = new EventSource(`/api/v1/events${q(tailnet)}`);
    source.onopen = () => {
      setStatus('live');
      // Changes made before the stream (re)connected were not sent on it: read the list afresh
      // (in the background: the list already shown stays until the new one arrives).
      void client.invalidateQueries({ queryKey: ['nodes', tailnet] });
    };
    source.onerror = () => {
      setStatus('reconnecting');
      // The stream also ends with the session; find out which it was.
      void client.invalidateQueries({ queryKey: ['session'] });
    };
    source.onmessage = (message) => {
      const event = JSON.parse(message.data as string) as { type: string; node?: NodeInfo; id?: number };
      if (event.type === 'node' && event.node !== undefined) {
        const node = event.node;
        client.setQueryData<NodeListItem[]>(['nodes', tailnet], (old) => {
          if (old === undefined) return old;
          const i = old.findIndex((n) => n.id === node.id);
          if (i === -1) return [...old, node];
          const copy = old.slice();
          copy[i] = node;
          return copy;
        });
        client.setQueryData(['node', tailnet, String(node.id)], node);
      } else if (event.type === 'nodeRemoved') {
        client.setQueryData<NodeListItem[]>(['nodes', tailnet], (old) => old?.filter((n) => n.id !== event.id));
      } else if (event.type === 'users') {
        void client.invalidateQueries({ queryKey: ['users', tailnet] });
      } else if (event.type === 'policy') {
        void client.invalidateQueries({ queryKey: ['policy', tailnet] });
      }
    };
    return () => source.close();
  }, [tailnet, client]);
  return status;
}

const NAV: Array<{ href: string; label: string; admin: boolean }> = [
  { href: '/machines', label: 'Machines', admin: false },
  { href: '/users', label: 'Users', admin: true },
  { href: '/keys', label: 'Keys', admin: true },
  { href: '/policy', label: 'Access controls', admin: true },
  { href: '/access', label: 'Access preview', admin: true },
  { href: '/settings', label: 'DNS & settings', admin: true },
  { href: '/audit', label: 'Audit log', admin: true },
];

function Shell({ session }: { session: Session }) {
  const [location] = useLocation();
  const client = useQueryClient();
  const [chosen, setChosen] = useState<string>(() => session.tailnet ?? localStorage.getItem('headway.tailnet') ?? 'default');
  const tailnet = session.tailnet ?? chosen;
  const tailnets = useQuery({
    queryKey: ['tailnets'],
    queryFn: () => api<{ tailnets: Array<{ name: string }> }>('GET', '/tailnets'),
    enabled: session.admin && session.tailnet === null,
  });
  const live = useLiveEvents(tailnet);
  // The tailnet's display name (DNS & settings page) beside the brand.
  const settings = useQuery({ queryKey: ['settings', tailnet], queryFn: () => api<Settings>('GET', `/settings${q(tailnet)}`), enabled: session.admin });
  const signOut = useMutation({
    mutationFn: () => api('DELETE', '/session'),
    onSuccess: () => {
      setCsrfToken(null);
      client.clear();
      window.location.hash = '#/signin';
      window.location.reload();
    },
  });
  return (
    <Ctx.Provider value={{ session, tailnet }}>
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header className="top">
        <div className="brand">Headway{settings.data?.display_name ? <span className="tailnet-name"> · {settings.data.display_name}</span> : null}</div>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((item) => session.admin || !item.admin).map((item) => (
              <li key={item.href}>
                <Link href={item.href} aria-current={location.startsWith(item.href) ? 'page' : undefined}>{item.label}</Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          {session.admin && session.tailnet === null && (
            <label className="inline">
              <span>Tailnet</span>
              <select value={tailnet} onChange={(e) => { localStorage.setItem('headway.tailnet', e.target.value); setChosen(e.target.value); client.clear(); }}>
                {(tailnets.data?.tailnets ?? [{ name: tailnet }]).map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
              </select>
            </label>
          )}
          <span className={`live ${live}`} role="status" aria-live="polite">{live === 'live' ? 'Live' : 'Reconnecting…'}</span>
          <span className="actor">{session.user ?? session.actor}{session.admin ? '' : ' (member)'}</span>
          <button type="button" onClick={() => signOut.mutate()} disabled={signOut.isPending}>Sign out</button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorBox error={signOut.error} title="Sign-out failed" />
        <Suspense fallback={<Loading what="the page" />}>
          <Switch>
            <Route path="/machines" component={MachinesPage} />
            <Route path="/machines/:id">{(params) => <MachinePage id={params.id} />}</Route>
            {session.admin && <Route path="/users" component={UsersPage} />}
            {session.admin && <Route path="/keys" component={KeysPage} />}
            {session.admin && <Route path="/policy" component={PolicyPage} />}
            {session.admin && <Route path="/access" component={AccessPage} />}
            {session.admin && <Route path="/settings" component={SettingsPage} />}
            {session.admin && <Route path="/audit" component={AuditPage} />}
            <Route><Redirect to="/machines" /></Route>
          </Switch>
        </Suspense>
      </main>
    </Ctx.Provider>
  );
}

function App() {
  const session = useQuery({ queryKey: ['session'], queryFn: () => api<Session>('GET', '/session'), staleTime: Infinity });
  const [location] = useLocation();
  useEffect(() => {
    if (session.data !== undefined) setCsrfToken(session.data.csrf_token);
  }, [session.data]);
  if (session.isPending) return <main id="main"><Loading what="your session" /></main>;
  if (session.isError) return <main id="main"><ErrorBox error={session.error} title="Cannot reach the server" /></main>;
  const signedIn = session.data.signed_in && session.data.kind === 'session';
  if (!signedIn) return location.startsWith('/signin') ? <SignInPage /> : <Redirect to="/signin" />;
  if (location.startsWith('/signin')) return <Redirect to="/machines" />;
  setCsrfToken(session.data.csrf_token);
  return <Shell session={session.data} />;
}

// Most visits open the machine list: ask for it together with the session rather than after it
// (the tailnet is the one chosen last, or `default`; a session bound to another tailnet just
// asks again for its own).
if (/^(#\/?(machines\/?)?)?$/.test(window.location.hash)) {
  void queryClient.prefetchQuery({ ...nodesQuery(localStorage.getItem('headway.tailnet') ?? 'default'), retry: false });
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <Router hook={useHashLocation}>
        <App />
      </Router>
    </QueryClientProvider>
  </StrictMode>,
);
