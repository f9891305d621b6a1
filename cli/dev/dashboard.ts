import { readFileSync } from 'node:fs';
import express from 'express';
import { browserScript } from '../../gateway/web/page.ts';

let page: { html: string; script: string } | undefined;

function load(): { html: string; script: string } {
  return (page ??= {
    html: readFileSync(new URL('./web/dashboard.html', import.meta.url), 'utf8'),
    script: browserScript(new URL('./web/dashboard.ts', import.meta.url)),
  });
}

/** What the dashboard needs to know of the host's state: the rest is passed through as it is. */
export interface DashboardSource {
  timeline: readonly { t: number }[];
}

/**
 * `/dashboard`: bots, instances over time, in-flight requests, cold starts, deliveries, dead letters.
 * `/dashboard/state?since=T` sends only the chart's samples taken after T (ms since the epoch): the
 * page polls twice a second and keeps the rest itself.
 */
export function dashboardRoutes(state: () => DashboardSource): express.Router {
  const router = express.Router();
  router.get('/dashboard', (_req, res) => void res.type('html').send(load().html));
  router.get('/dashboard.js', (_req, res) => void res.type('text/javascript').send(load().script));
  router.get('/dashboard/state', (req, res) => {
    const s = state();
    const since = Number(req.query.since);
    const body = Number.isFinite(since) && since > 0 ? { ...s, timeline: s.timeline.filter((x) => x.t > since) } : s;
    res.set('cache-control', 'no-store').json(body);
  });
  return router;
}
