'use client';

import { useRef, useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';

import { Button } from '@/components/ui/button';
import { Callout } from '@/components/ui/callout';
import { AlertDialog } from '@/components/ui/dialog';
import { Label, Textarea } from '@/components/ui/input';
import { toast } from '@/components/ui/toast';
import { isApiError } from '@/lib/client/api';
import { formatDateTime } from '@/lib/client/format';
import { lockId } from '@/lib/client/locks';
import { backendsQuery } from '@/lib/client/queries';
import { sameHolder, useReleaseLock } from '@/lib/client/release';
import type { BackendStatus, LockInfo } from '@/lib/client/types';
import { cn } from '@/lib/utils';

import { KeyText } from './key-text';
import { liveLocksOptions } from './locks-data';
import { Elapsed, TtlCountdown } from './time-cells';

const MAX_REASON = 500;

/**
 * "Force-release this lock?": names exactly what will be released (key, owner, fence) and what
 * happens next (the first waiter gets it; the old holder may or may not be told), asks for a
 * reason for the audit log, and sends the holder it showed, so a lock that changed hands in the
 * meantime is refused by the server (409) and explained here, with the new holder, instead of
 * being released blindly. Offering to release the new holder starts over with that holder shown.
 */
export function ForceReleaseDialog({ lock: initial, onClose }: { lock: LockInfo; onClose: () => void }) {
  const [lock, setLock] = useState(initial);
  const [reason, setReason] = useState('');
  const [touched, setTouched] = useState(false);
  const [action, setAction] = useState<'release' | 'revoke-lease'>('release');
  const reasonRef = useRef<HTMLTextAreaElement>(null);
  const release = useReleaseLock();
  const { data: backends } = useQuery(backendsQuery());
  // Reads the live cache only: listing every lock again whenever the dialog opens would cost
  // several MB at 10,000 locks per backend (and the page that opened it keeps the cache current).
  const qc = useQueryClient();
  const { data: live } = useQuery({ ...liveLocksOptions(qc), enabled: false, refetchInterval: false });
  const backend = backends?.find((b) => b.id === lock.backend);

  const current = live?.locks.get(lockId(lock.backend, lock.key));
  const changedWhileOpen = !!current && !sameHolder(current, lock);
  const goneWhileOpen = !!live && !current && !release.isSuccess;

  const conflict = isApiError(release.error, 409) ? (release.error.body as { lock?: LockInfo } | null)?.lock ?? null : null;
  const reasonMissing = reason.trim() === '';

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (reasonMissing) {
      reasonRef.current?.focus();
      return;
    }
    release.mutate(
      { lock, reason, action },
      {
        onSuccess: (answer) => {
          toast(
            answer.revoked
              ? `Revoked lease ${answer.revoked.lease} on ${lock.backend}: ${answer.revoked.keys.length} key(s) dropped.`
              : `Released ${lock.key} on ${lock.backend}.`,
          );
          onClose();
        },
      },
    );
  };

  const firstWaiter = lock.waiters[0];
  // etcd: the holder's lease can be ended as a whole — a separate, heavier action.
  const lease = typeof lock.meta?.lease === 'string' ? lock.meta.lease : null;
  const canRevoke = !!backend?.capabilities?.leaseRevocation && lease !== null;

  return (
    <AlertDialog
      title="Force-release this lock?"
      description="The holder loses the lock at once. If it is still working, it and the next holder may both run; do this only for a holder that is stuck or gone."
      onClose={onClose}
      initialFocus={reasonRef}
    >
      <form onSubmit={submit} noValidate>
        <div className="space-y-4 px-5 pt-4 pb-5">
          <div>
          {conflict && <p className="mb-1 text-xs font-medium text-muted-foreground">The holder you confirmed (it no longer holds the lock):</p>}
          <dl
            className={cn(
              'grid grid-cols-[7rem_minmax(0,1fr)] gap-x-3 gap-y-1.5 rounded-md border border-border bg-muted/40 px-3.5 py-3 text-sm',
              conflict && 'opacity-60',
            )}
          >
            <dt className="text-muted-foreground">Key</dt>
            <dd className="text-[13px] font-medium" data-testid="release-key">
              <KeyText value={lock.key} />
            </dd>
            <dt className="text-muted-foreground">Backend</dt>
            <dd>
              {lock.backend}
              {backend && <span className="text-muted-foreground"> · {backend.type}</span>}
              <span className="text-muted-foreground"> · {lock.format}</span>
            </dd>
            <dt className="text-muted-foreground">Held by</dt>
            <dd className="font-mono text-[13px] break-all" data-testid="release-owner">
              {lock.owner ?? <span className="font-sans text-muted-foreground">unknown owner</span>}
            </dd>
            <dt className="text-muted-foreground">Fence</dt>
            <dd className="font-mono text-[13px]" data-testid="release-fence">
              {lock.fence ?? <span className="font-sans text-muted-foreground">none</span>}
            </dd>
            {!conflict && (
              <>
                <dt className="text-muted-foreground">Held for</dt>
                <dd>
                  <Elapsed since={lock.acquiredAt} /> <span className="text-muted-foreground">· TTL</span>{' '}
                  <TtlCountdown expiresAt={lock.expiresAt} />
                </dd>
              </>
            )}
            <dt className="text-muted-foreground">Next in line</dt>
            <dd data-testid="release-next">
              {firstWaiter ? (
                <>
                  <span className="font-mono text-[13px] break-all">{firstWaiter.owner ?? 'unknown waiter'}</span>
                  <span className="text-muted-foreground">
                    {' '}
                    · waiting <Elapsed since={firstWaiter.since} />
                    {lock.waiters.length > 1 && ` · ${lock.waiters.length - 1} more behind it`}
                  </span>
                </>
              ) : (
                <span className="text-muted-foreground">nobody is waiting: the lock is simply freed</span>
              )}
            </dd>
          </dl>
          </div>

          <Caveats lock={lock} backend={backend} />

          {changedWhileOpen && !conflict && (
            <Callout tone="warning" role="status" title="This lock changed hands while this dialog was open">
              It is now held by <span className="font-mono">{current!.owner ?? 'an unknown owner'}</span>
              {current!.fence && <> (fence {current!.fence})</>}. Releasing will be refused, because it names the holder shown above.
            </Callout>
          )}
          {goneWhileOpen && !release.error && (
            <Callout tone="info" role="status" title="This lock looks free already">
              The live list no longer shows it: it was released or expired since you opened this dialog.
            </Callout>
          )}

          {conflict ? (
            <Callout tone="danger" role="alert" title="The holder changed: nothing was released" data-testid="release-conflict">
              <p>
                Since you opened this dialog, the lock was taken by someone else. The server refused to release it, because the holder you
                confirmed is gone.
              </p>
              <dl className="mt-2 grid grid-cols-[6rem_minmax(0,1fr)] gap-x-3 gap-y-1">
                <dt>New holder</dt>
                <dd className="font-mono break-all" data-testid="conflict-owner">
                  {conflict.owner ?? 'unknown owner'}
                </dd>
                <dt>Fence</dt>
                <dd className="font-mono" data-testid="conflict-fence">
                  {conflict.fence ?? 'none'}
                </dd>
                <dt>Acquired</dt>
                <dd>{conflict.acquiredAt !== null ? formatDateTime(conflict.acquiredAt) : 'unknown'}</dd>
              </dl>
              <p className="mt-2">If the new holder is stuck too, review it and confirm again.</p>
            </Callout>
          ) : release.error ? (
            <Callout tone="danger" role="alert" title={errorTitle(release.error)}>
              {release.error.message}
            </Callout>
          ) : null}

          {!conflict && canRevoke && (
            <fieldset className="space-y-1.5" data-testid="release-action">
              <legend className="mb-1 text-sm font-medium">What to release</legend>
              <label className="flex items-start gap-2 text-sm">
                <input type="radio" name="action" className="mt-1" checked={action === 'release'} onChange={() => setAction('release')} />
                <span>
                  This lock only <span className="text-muted-foreground">(recommended): deletes its key if it is still the one shown</span>
                </span>
              </label>
              <label className="flex items-start gap-2 text-sm">
                <input type="radio" name="action" className="mt-1" checked={action === 'revoke-lease'} onChange={() => setAction('revoke-lease')} />
                <span>
                  Revoke the holder&apos;s lease <span className="font-mono text-[13px]">{lease}</span>
                  <span className="block text-red-700 dark:text-red-300">
                    etcd deletes every key on that lease: all other locks and keys of that holder&apos;s session go too, and its
                    keep-alive fails.
                  </span>
                </span>
              </label>
            </fieldset>
          )}

          {!conflict && (
            <div className="space-y-1.5">
              <Label htmlFor="release-reason" className="text-sm text-foreground">
                Reason <span className="font-normal text-muted-foreground">(required, recorded in the audit log)</span>
              </Label>
              <Textarea
                ref={reasonRef}
                id="release-reason"
                name="reason"
                required
                aria-required="true"
                aria-invalid={touched && reasonMissing}
                aria-describedby={touched && reasonMissing ? 'release-reason-error' : undefined}
                maxLength={MAX_REASON}
                rows={3}
                placeholder="e.g. worker host-7 crashed at 03:12; job stuck for 40 min (INC-1234)"
                value={reason}
                onChange={(e) => setReason(e.target.value)}
              />
              {touched && reasonMissing && (
                <p id="release-reason-error" className="text-xs text-red-700 dark:text-red-300">
                  Say why the lock is being released.
                </p>
              )}
            </div>
          )}
        </div>

        <div className="flex flex-wrap items-center justify-end gap-2 border-t border-border bg-muted/40 px-5 py-3">
          <Button variant="secondary" onClick={onClose}>
            {conflict ? 'Close' : 'Cancel'}
          </Button>
          {/* Distinct keys: React must not turn this button into the submit button in place
              during the click, or the browser would submit the form at the end of that click. */}
          {conflict ? (
            <Button
              key="review"
              variant="danger-outline"
              onClick={(e) => {
                e.preventDefault();
                setLock(conflict);
                release.reset();
                setTimeout(() => reasonRef.current?.focus(), 0);
              }}
            >
              Review the new holder…
            </Button>
          ) : (
            <Button key="submit" type="submit" variant="danger" disabled={release.isPending}>
              {release.isPending ? 'Releasing…' : action === 'revoke-lease' ? 'Revoke lease' : 'Force-release'}
            </Button>
          )}
        </div>
      </form>
    </AlertDialog>
  );
}

function errorTitle(err: Error): string {
  if (isApiError(err, 404)) return 'Nothing holds this lock any more';
  if (isApiError(err, 403)) return 'Your role may not release locks';
  if (isApiError(err, 405)) return 'The console is read-only';
  if (isApiError(err, 429)) return 'Too many releases';
  if (isApiError(err, 0)) return 'The console server cannot be reached';
  return 'The release failed';
}

/** What this release will and will not do, from the backend's capabilities and the layout. */
function Caveats({ lock, backend }: { lock: LockInfo; backend: BackendStatus | undefined }) {
  const caps = backend?.capabilities;
  const items: string[] = [];
  const foreign = lock.format !== 'lockdeck';
  if (foreign) {
    items.push(`This is a ${lock.format} lock written by another client library: its holder is not told, and keeps running until it checks the lock itself.`);
  } else if (caps && !caps.notifiesHolderOnForce) {
    items.push('The old holder is not told; it keeps running until its next renewal.');
  }
  if (lock.fence === null) items.push('This lock has no fencing token: the protected resource cannot refuse the old holder’s late writes.');
  if (caps && caps.waiters && !caps.fifo && lock.waiters.length > 0) items.push('Waiters are not served in order on this backend: whoever retries first gets the lock.');
  const note = typeof lock.meta?.note === 'string' ? lock.meta.note : null;
  if (note) items.push(`Note from the layout: ${note}.`);
  if (backend?.status === 'down') items.push(`Backend ${backend.id} is down right now; the release will most likely fail.`);
  if (items.length === 0) return null;
  return (
    <Callout tone="warning" title="Before you release" data-testid="release-caveats">
      <ul className="list-disc space-y-0.5 pl-4">
        {items.map((i) => (
          <li key={i}>{i}</li>
        ))}
      </ul>
    </Callout>
  );
}
