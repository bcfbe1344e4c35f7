export * from './types';
export * from './errors';
export { withLock } from './with-lock';
export { compareFences, delay, tokenHash, validateName, DEFAULT_ACQUIRE_OPTIONS } from './util';
export { lockHealth } from './health';
