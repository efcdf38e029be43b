// Sign-in: "Sign in with <provider>" when the server has OIDC, otherwise how to get a link.
import { useQuery } from '@tanstack/react-query';
import { api, type SignInOptions } from '../api';
import { ErrorBox, Loading } from '../ui';

export function SignInPage() {
  const options = useQuery({ queryKey: ['signin-options'], queryFn: () => api<SignInOptions>('GET', '/signin-options') });
  const reason = new URLSearchParams(window.location.hash.split('?')[1] ?? '').get('error');
  return (
    <main id="main" className="signin">
      <div className="card">
        <h1>Sign in to Headway</h1>
        {reason !== null && <div className="error" role="alert">{reason}</div>}
        {options.isPending && <Loading what="sign-in options" />}
        <ErrorBox error={options.error} />
        {options.data?.oidc === true && (
          <p><a className="button primary" href={options.data.oidc_start_path ?? '/oidc/console/login?next=/admin/'}>Sign in with {options.data.oidc_provider ?? 'your identity provider'}</a></p>
        )}
        {options.data !== undefined && (
          <div>
            <h2>{options.data.oidc ? 'Or use a sign-in link' : 'Sign in with a link'}</h2>
            <p>On the server, run:</p>
            <pre><code>headway admin login-link</code></pre>
            <p>and open the link it prints. It works once and for a few minutes. To sign in as a user of a tailnet, add <code>--user NAME</code> (and <code>--tailnet NAME</code>).</p>
          </div>
        )}
      </div>
    </main>
  );
}
