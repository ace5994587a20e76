export interface Order {
  id: number;
  customer: string;
  item: string;
  total: number;
  /** The card the billing service charges; 'declined' always fails, 'flaky' fails once. */
  card: 'ok' | 'flaky' | 'declined';
}
