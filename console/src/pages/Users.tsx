// Users with their roles and devices: create, set role, delete (with what happens to devices).
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, enc, q, type UserInfo } from '../api';
import { useConsole } from '../main';
import { ConfirmDialog, Empty, ErrorBox, Loading, Page } from '../ui';
import { useNodes } from './Machines';

const ROLES = ['admin', 'it-admin', 'network-admin', 'billing-admin', 'auditor', 'member'];

export function UsersPage() {
  const { tailnet } = useConsole();
  const client = useQueryClient();
  const users = useQuery({ queryKey: ['users', tailnet], queryFn: async () => (await api<{ users: UserInfo[] }>('GET', `/users${q(tailnet)}`)).users });
  const nodes = useNodes(tailnet);
  const [form, setForm] = useState({ name: '', email: '', role: 'member' });
  const [deleting, setDeleting] = useState<UserInfo | null>(null);
  const refresh = () => void client.invalidateQueries({ queryKey: ['users', tailnet] });
  const create = useMutation({
    mutationFn: () => api('POST', `/users${q(tailnet)}`, { name: form.name, ...(form.email !== '' ? { email: form.email } : {}), role: form.role }),
    onSuccess: () => { setForm({ name: '', email: '', role: 'member' }); refresh(); },
  });
  const setRole = useMutation({ mutationFn: (v: { user: UserInfo; role: string }) => api('PATCH', `/users/${v.user.id}${q(tailnet)}`, { role: v.role }), onSettled: refresh });
  const remove = useMutation({
    mutationFn: (user: UserInfo) => api('DELETE', `/users/${enc(String(user.id))}${q(tailnet)}`),
    onSuccess: () => { setDeleting(null); refresh(); },
  });
  const devicesOf = (u: UserInfo) => (nodes.data ?? []).filter((n) => n.user_id === u.id);
  const submit = (e: FormEvent) => { e.preventDefault(); create.mutate(); };
  const deletingDevices = deleting === null ? [] : devicesOf(deleting);

  return (
    <Page title="Users">
      <form className="inline-form card" onSubmit={submit} aria-labelledby="h-new-user">
        <h2 id="h-new-user">Add a user</h2>
        <label><span>Name</span><input required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></label>
        <label><span>Email</span><input type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} /></label>
        <label><span>Role</span>
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}>{ROLES.map((r) => <option key={r}>{r}</option>)}</select>
        </label>
        <button type="submit" className="primary" disabled={create.isPending}>Add user</button>
        <ErrorBox error={create.error} title="Cannot add the user" />
      </form>
      {users.isPending && <Loading what="users" />}
      <ErrorBox error={users.error ?? setRole.error} />
      {users.isSuccess && users.data.length === 0 && <Empty>No users yet.</Empty>}
      {users.isSuccess && users.data.length > 0 && (
        <table className="table">
          <caption className="sr-only">Users of {tailnet}</caption>
          <thead><tr><th scope="col">User</th><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Devices</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {users.data.map((u) => (
              <tr key={u.id}>
                <th scope="row">{u.name}{u.display_name !== '' && u.display_name !== u.name && <span className="sub">{u.display_name}</span>}</th>
                <td>{u.email || '—'}</td>
                <td>
                  {u.role === 'owner' ? 'owner' : (
                    <select aria-label={`Role of ${u.name}`} value={u.role} onChange={(e) => setRole.mutate({ user: u, role: e.target.value })}>
                      {ROLES.map((r) => <option key={r}>{r}</option>)}
                    </select>
                  )}
                </td>
                <td>{devicesOf(u).length}</td>
                <td><button type="button" className="danger" onClick={() => setDeleting(u)}>Delete</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog open={deleting !== null} title={`Delete ${deleting?.name ?? ''}?`} confirm="Delete user" danger busy={remove.isPending}
        onCancel={() => { setDeleting(null); remove.reset(); }} onConfirm={() => deleting !== null && remove.mutate(deleting)}>
        {deletingDevices.length === 0
          ? <p>{deleting?.name} owns no devices. Their pre-auth keys are deleted with them.</p>
          : <p>{deleting?.name} still owns {deletingDevices.length} device{deletingDevices.length === 1 ? '' : 's'} ({deletingDevices.map((n) => n.name).join(', ')}). Headway refuses to delete a user who owns devices: delete them or move them to another user first. Nothing will be deleted now.</p>}
        <ErrorBox error={remove.error} title="Not deleted" />
      </ConfirmDialog>
    </Page>
  );
}
