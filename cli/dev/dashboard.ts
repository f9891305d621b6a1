import { readFileSync } from 'node:fs';
import express from 'express';

const { stripTypeScriptTypes } = process.getBuiltinModule('node:module') as typeof import('node:module');

let page: { html: string; script: string } | undefined;

function load(): { html: string; script: string } {
  return (page ??= {
    html: readFileSync(new URL('./web/dashboard.html', import.meta.url), 'utf8'),
    script: stripTypeScriptTypes(readFileSync(new URL('./web/dashboard.ts', import.meta.url), 'utf8'), { mode: 'strip' }),
  });
}

/** `/dashboard`: bots, instances over time, in-flight requests, cold starts, deliveries, dead letters. */
export function dashboardRoutes(state: () => unknown): express.Router {
  const router = express.Router();
  router.get('/dashboard', (_req, res) => void res.type('html').send(load().html));
  router.get('/dashboard.js', (_req, res) => void res.type('text/javascript').send(load().script));
  router.get('/dashboard/state', (_req, res) => void res.set('cache-control', 'no-store').json(state()));
  return router;
}
