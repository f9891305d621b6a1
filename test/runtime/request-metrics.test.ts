import { describe, expect, it } from 'vitest';
import { DURATION_BUCKETS as SHARED_BUCKETS } from '../../eventing/metrics.ts';
import { DURATION_BUCKETS, RequestMetrics } from '../../runtime/request-metrics.ts';

describe('RequestMetrics', () => {
  // The pod keeps its own copy so that it loads prom-client only when scraped; the other servers' must match.
  it('buckets request durations as the gateway, the broker and the operator do', () => {
    expect(DURATION_BUCKETS).toEqual(SHARED_BUCKETS);
  });

  it('counts by route and code and fills cumulative buckets, a value on a bound in that bound', async () => {
    const m = new RequestMetrics([0.1, 1]);
    m.observe('event', 200, 0.1);
    m.observe('event', 200, 0.5);
    m.observe('event', 503, 2);
    m.observe('chat', 200, 0.01);
    const [requests, duration] = m.metrics();
    expect((await requests!.get()).values).toEqual([
      { labels: { route: 'event', code: '200' }, value: 2 },
      { labels: { route: 'event', code: '503' }, value: 1 },
      { labels: { route: 'chat', code: '200' }, value: 1 },
    ]);
    const event = (await duration!.get()).values.filter((v) => v.labels.route === 'event');
    expect(event.map((v) => [v.metricName, v.labels.le, v.value])).toEqual([
      ['knbot_request_duration_seconds_bucket', 0.1, 1],
      ['knbot_request_duration_seconds_bucket', 1, 2],
      ['knbot_request_duration_seconds_bucket', '+Inf', 3],
      ['knbot_request_duration_seconds_sum', undefined, 2.6],
      ['knbot_request_duration_seconds_count', undefined, 3],
    ]);
  });
});
