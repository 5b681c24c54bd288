// The account's event feed, GET /v1/events, kept open while a view shows it (docs/console.md#search-and-live-updates).
// Read with fetch and a stream reader (api.js events()), because EventSource cannot send the Authorization header.
// The server ends a feed after Limits:EventFeedLifetime; it is opened again at once with Last-Event-ID, so nothing
// is missed. A dropped connection is retried after 1, 2, 4… up to 15 seconds.
import { events, ApiError } from './api.js';

const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 15000;

/**
 * Calls onEvent({ id, event, data }) for each status change of the account's executions until the signal aborts.
 * onState('live' | 'reconnecting' | 'stopped') tells how the feed is; onGap() is called when the feed opens again
 * without knowing where it stopped (no event had come yet), so that the view reads what it may have missed.
 */
export function follow({ signal, onEvent, onState = () => {}, onGap = () => {} }) {
  run().catch(() => onState('stopped'));

  async function run() {
    let lastEventId = null;
    let retry = FIRST_RETRY_MS;
    let opened = false;
    while (!signal.aborted) {
      try {
        if (opened && lastEventId === null) onGap();
        opened = true;
        onState('live');
        for await (const frame of events('/v1/events', { signal, lastEventId })) {
          if (frame.id) lastEventId = frame.id;
          retry = FIRST_RETRY_MS;
          onEvent(frame);
        }
        // The server ended the feed (its lifetime): open it again at once, from the last event.
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          onState('stopped');
          return;
        }
        onState('reconnecting');
        await sleep(retry, signal);
        retry = Math.min(retry * 2, LAST_RETRY_MS);
      }
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
