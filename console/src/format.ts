// Small formatting helpers shared by the pages.
export function ago(iso: string | null): string {
  if (iso === null) return 'never';
  const ms = Date.now() - new Date(iso).getTime();
  const abs = Math.abs(ms);
  const unit = abs < 60_000 ? [Math.round(abs / 1000), 's'] : abs < 3_600_000 ? [Math.round(abs / 60_000), 'min'] : abs < 86_400_000 ? [Math.round(abs / 3_600_000), 'h'] : [Math.round(abs / 86_400_000), 'd'];
  return ms >= 0 ? `${unit[0]} ${unit[1]} ago` : `in ${unit[0]} ${unit[1]}`;
}

export function when(iso: string | null): string {
  return iso === null ? 'never' : new Date(iso).toLocaleString();
}

export const EXIT_ROUTES = ['0.0.0.0/0', '::/0'];
export const isExitRoute = (r: string): boolean => EXIT_ROUTES.includes(r);
export const subnetRoutes = (routes: string[]): string[] => routes.filter((r) => !isExitRoute(r));
export const offersExit = (routes: string[]): boolean => routes.some(isExitRoute);
