// `epochfs ... | head` closes the pipe early: that is not an error.
export function exitQuietlyOnEpipe(failureCode: number): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : failureCode));
}
