// Shared pieces: loading, empty and error states, the page frame, and a confirm dialog built on
// the native <dialog> (focus trapping and Escape come from the browser).
import { useEffect, useRef, type ReactNode } from 'react';
import { ApiError } from './api';

export function Loading({ what }: { what: string }) {
  return <p className="state" role="status" aria-live="polite">Loading {what}…</p>;
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state empty">{children}</p>;
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (error === null || error === undefined) return null;
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  return (
    <div className="error" role="alert">
      <strong>{title ?? 'Something went wrong'}:</strong> {message}
      {code !== undefined && <span className="code"> ({code})</span>}
    </div>
  );
}

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · Headway`;
  }, [title]);
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">{title}</h1>
        {actions !== undefined && <div className="page-actions">{actions}</div>}
      </div>
      {children}
    </section>
  );
}

export function ConfirmDialog(props: {
  open: boolean; title: string; children: ReactNode; confirm: string; danger?: boolean;
  onConfirm: () => void; onCancel: () => void; busy?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog ref={ref} onCancel={(e) => { e.preventDefault(); props.onCancel(); }} aria-labelledby="dialog-title">
      <h2 id="dialog-title">{props.title}</h2>
      <div>{props.children}</div>
      <div className="dialog-actions">
        <button type="button" onClick={props.onCancel}>Cancel</button>
        <button type="button" className={props.danger ? 'danger' : 'primary'} onClick={props.onConfirm} disabled={props.busy}>{props.confirm}</button>
      </div>
    </dialog>
  );
}

export function Tags({ tags }: { tags: string[] }) {
  if (tags.length === 0) return <span className="muted">none</span>;
  return <span className="tags">{tags.map((t) => <span key={t} className="tag">{t}</span>)}</span>;
}

export function StatusDot({ online }: { online: boolean }) {
  return <span className={`status ${online ? 'online' : 'offline'}`}><span className="dot" aria-hidden="true" />{online ? 'Connected' : 'Offline'}</span>;
}
