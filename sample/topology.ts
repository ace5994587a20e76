import type { ExchangeDefinition } from '../lib';

/** The sample's names, in one place. */
export const ORDERS_EXCHANGE: ExchangeDefinition = { name: 'warren.sample.orders', type: 'topic', durable: false };
export const ORDERS_RPC_QUEUE = 'warren.sample.orders-rpc';
export const BILLING_QUEUE = 'warren.sample.billing';
export const NOTIFICATIONS_QUEUE = 'warren.sample.notifications';
export const REPORTS_QUEUE = 'warren.sample.reports';
export const BILLING_RETRY_DELAYS = [200, 400];
export const ORDER_HISTORY_STREAM = 'warren.sample.order-history';
