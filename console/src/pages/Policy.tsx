// Access controls: the policy in a HuJSON editor (syntax highlighting; errors at their line and
// column while typing), save (the server validates and runs the policy's tests), and version
// history with a diff against the current text and rollback.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { EditorView, basicSetup } from 'codemirror';
import { json } from '@codemirror/lang-json';
import { linter, lintGutter, type Diagnostic } from '@codemirror/lint';
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { diffLines } from 'diff';
import { api, q, type PolicyCheck, type PolicyInfo, type PolicyVersionInfo } from '../api';
import { when } from '../format';
import { useConsole } from '../main';
import { ConfirmDialog, ErrorBox, Loading, Page } from '../ui';

export interface SyntaxProblem { from: number; to: number; line: number; column: number; message: string }

const MESSAGES: Record<string, string> = {
  InvalidSymbol: 'unexpected character', InvalidNumberFormat: 'malformed number', PropertyNameExpected: 'expected a property name in double quotes',
  ValueExpected: 'expected a value', ColonExpected: 'expected ":"', CommaExpected: 'expected ","', CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"', EndOfFileExpected: 'unexpected text after the end of the policy', InvalidCommentToken: 'malformed comment',
  UnexpectedEndOfComment: 'comment not closed', UnexpectedEndOfString: 'string not closed', UnexpectedEndOfNumber: 'number not complete',
  InvalidUnicode: 'malformed \\u escape', InvalidEscapeCharacter: 'invalid escape', InvalidCharacter: 'invalid character in a string',
};

/** HuJSON syntax errors (comments and trailing commas allowed), with 1-based line and column. */
export function syntaxProblems(text: string): SyntaxProblem[] {
  const errors: ParseError[] = [];
  parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  return errors.map((e) => {
    const before = text.slice(0, e.offset);
    const line = before.split('\n').length;
    const column = e.offset - before.lastIndexOf('\n');
    const code = printParseErrorCode(e.error);
    return { from: e.offset, to: Math.min(text.length, e.offset + Math.max(1, e.length)), line, column, message: MESSAGES[code] ?? code };
  });
}

const DEFAULT_POLICY = `{
  // Everyone may reach everything. Replace with your own rules.
  "acls": [
    { "action": "accept", "src": ["*"], "dst": ["*:*"] },
  ],
}
`;

export function PolicyPage() {
  const { tailnet } = useConsole();
  const client = useQueryClient();
  const policy = useQuery({ queryKey: ['policy', tailnet], queryFn: () => api<PolicyInfo>('GET', `/policy${q(tailnet)}`) });
  const versions = useQuery({
    queryKey: ['policy-versions', tailnet],
    queryFn: async () => (await api<{ versions: PolicyVersionInfo[] }>('GET', `/policy/versions${q(tailnet)}`)).versions,
  });
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const [text, setText] = useState('');
  const [problems, setProblems] = useState<SyntaxProblem[]>([]);
  const [picked, setPicked] = useState<PolicyVersionInfo | null>(null);
  const [rollback, setRollback] = useState<PolicyVersionInfo | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const fileMode = policy.data?.mode === 'file';

  const initial = policy.data === undefined ? undefined : policy.data.policy ?? DEFAULT_POLICY;
  useEffect(() => {
    if (initial === undefined || host.current === null || view.current !== null) return;
    const editor = new EditorView({
      doc: initial,
      parent: host.current,
      extensions: [
        basicSetup,
        json(),
        lintGutter(),
        linter((v): Diagnostic[] => syntaxProblems(v.state.doc.toString()).map((p) => ({ from: p.from, to: p.to, severity: 'error', message: `line ${p.line}, column ${p.column}: ${p.message}` })), { delay: 250 }),
        EditorView.updateListener.of((u) => {
          if (!u.docChanged) return;
          const next = u.state.doc.toString();
          setText(next);
          setProblems(syntaxProblems(next));
        }),
        EditorView.editable.of(!fileMode),
        EditorView.contentAttributes.of({ 'aria-label': 'Policy (HuJSON)' }),
        // The CSP admits CodeMirror's <style> element only with the page's nonce.
        EditorView.cspNonce.of(document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content') ?? ''),
      ],
    });
    view.current = editor;
    setText(initial);
    setProblems(syntaxProblems(initial));
    return () => {
      editor.destroy();
      view.current = null;
    };
  }, [initial, fileMode]);

  const replace = (next: string) => {
    const v = view.current;
    if (v !== null) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: next } });
  };
  const check = useMutation({ mutationFn: () => api<PolicyCheck>('POST', `/policy/check${q(tailnet)}`, { policy: text }) });
  const save = useMutation({
    mutationFn: (body: string) => api<PolicyInfo>('PUT', `/policy${q(tailnet)}`, { policy: body }),
    onSuccess: (stored) => {
      setSaved(`Saved as version ${stored.version?.id ?? ''}; every device has its new rules.`);
      void client.invalidateQueries({ queryKey: ['policy-versions', tailnet] });
    },
    onMutate: () => setSaved(null),
  });
  const diff = useMemo(() => (picked === null ? [] : diffLines(picked.policy, text)), [picked, text]);

  return (
    <Page title="Access controls">
      {policy.isPending && <Loading what="the policy" />}
      <ErrorBox error={policy.error} title="Cannot load the policy" />
      {fileMode && <p className="notice">This server reads its policy from {policy.data?.path}; edit that file. The editor is read-only.</p>}
      {policy.isSuccess && policy.data.policy === null && <p className="muted">No policy is stored: every device may reach every other. The editor starts from an allow-all example.</p>}
      <div ref={host} className="editor" />
      <div aria-live="polite" className="problems" data-testid="syntax-problems">
        {problems.length === 0
          ? <p className="ok-text">No syntax errors.</p>
          : <ul>{problems.map((p, i) => <li key={i} className="error-text">Line {p.line}, column {p.column}: {p.message}</li>)}</ul>}
      </div>
      {!fileMode && (
        <div className="row-actions">
          <button type="button" onClick={() => check.mutate()} disabled={check.isPending || problems.length > 0}>Check and run tests</button>
          <button type="button" className="primary" onClick={() => save.mutate(text)} disabled={save.isPending || problems.length > 0}>Save policy</button>
        </div>
      )}
      <div aria-live="polite">
        <ErrorBox error={save.error} title="The server refused the policy" />
        <ErrorBox error={check.error} />
        {saved !== null && <p className="ok-text" role="status">{saved}</p>}
        {check.data !== undefined && (check.data.ok
          ? <p className="ok-text" role="status">The policy is valid{check.data.tests !== null ? `; ${check.data.tests.total} tests pass` : ''}.</p>
          : <div className="error" role="alert"><strong>The policy would be refused:</strong> {check.data.error}</div>)}
      </div>

      <section aria-labelledby="h-history">
        <h2 id="h-history">History</h2>
        {versions.isPending && <Loading what="versions" />}
        <ErrorBox error={versions.error} />
        {versions.isSuccess && versions.data.length === 0 && <p className="muted">No versions stored yet.</p>}
        {versions.isSuccess && versions.data.length > 0 && (
          <table className="table">
            <caption className="sr-only">Policy versions</caption>
            <thead><tr><th scope="col">Version</th><th scope="col">Author</th><th scope="col">Saved</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {versions.data.map((v, i) => (
                <tr key={v.id}>
                  <th scope="row">{v.id}{i === 0 && ' (current)'}</th>
                  <td>{v.author}</td>
                  <td>{when(v.created_at)}</td>
                  <td>
                    <button type="button" onClick={() => setPicked(picked?.id === v.id ? null : v)} aria-pressed={picked?.id === v.id}>Diff with editor</button>{' '}
                    {i > 0 && !fileMode && <button type="button" onClick={() => setRollback(v)}>Roll back to this</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {picked !== null && (
          <figure className="diff">
            <figcaption>Changes from version {picked.id} to the editor</figcaption>
            <pre>{diff.map((part, i) => (
              <span key={i} className={part.added ? 'added' : part.removed ? 'removed' : 'same'}>
                {part.value.split('\n').filter((line, j, all) => j < all.length - 1 || line !== '').map((line) => `${part.added ? '+ ' : part.removed ? '- ' : '  '}${line}\n`).join('')}
              </span>
            ))}</pre>
          </figure>
        )}
      </section>
      <ConfirmDialog open={rollback !== null} title={`Roll back to version ${rollback?.id ?? ''}?`} confirm="Roll back" busy={save.isPending}
        onCancel={() => setRollback(null)} onConfirm={() => { if (rollback !== null) { replace(rollback.policy); save.mutate(rollback.policy); } setRollback(null); }}>
        <p>The text of version {rollback?.id} is stored as a new version (after the server validates it and runs its tests).</p>
      </ConfirmDialog>
    </Page>
  );
}
