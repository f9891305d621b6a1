export { type Route, Router, indexKey } from './router.ts';
