// Debugging aid (not a bench): starts the bench stack with one subscription, prints its URLs
// and keeps it up for HOLD_SECONDS (default 120) so a profiler can be attached by hand.
import { backportBody, TOPIC } from '../../tests/integration/lib/fhirsub.mjs';
import { createSubscription, startBenchStack } from './bench.mjs';

const ctx = await startBenchStack();
try {
  const sub = await createSubscription(ctx.fhirUrl, backportBody({ topic: TOPIC.patientChange, filters: [], heartbeat: null, maxCount: null }));
  console.log(JSON.stringify({ fhirUrl: ctx.fhirUrl, plainUrl: ctx.plainUrl, sub: sub.id, token: `${ctx.fhirUrl}/Subscription/$get-ws-binding-token?id=${sub.id}`, pids: ctx.stack.httpd.pids() }));
  await new Promise((r) => setTimeout(r, Number(process.env.HOLD_SECONDS ?? 120) * 1000));
} finally {
  await ctx.stop();
}
