import type { AmqpSession } from '../amqp';

/** What a Nest server or client reports through its `status` stream. */
export type AmqpSessionStatus = 'connected' | 'disconnected' | 'reconnecting';

/**
 * Reports a session's readiness as Nest transport statuses (now, then on every change); returns the function
 * that stops listening. Shared by AmqpServer and AmqpClient.
 */
export function watchSessionStatus(session: AmqpSession, next: (status: AmqpSessionStatus) => void): () => void {
  if (session.isReady) next('connected');
  const connected = () => session.isReady && next('connected');
  const disconnected = () => next('disconnected');
  const reconnecting = () => next('reconnecting');
  session.on('connected', connected);
  session.on('recovered', connected);
  session.on('disconnected', disconnected);
  session.on('reconnecting', reconnecting);
  return () => {
    session.off('connected', connected);
    session.off('recovered', connected);
    session.off('disconnected', disconnected);
    session.off('reconnecting', reconnecting);
  };
}
