// The one rule for "small" (CIFAR-like) images, which the paper treats differently: the
// CIFAR stem (3x3 conv, no max-pool), temperature 0.5, weight decay 1e-4, colour jitter
// strength 0.5, no blur, and the whole image (no centre crop) at evaluation.
export const SMALL_IMAGE = 32;

export const isSmallImage = (size: number): boolean => size <= SMALL_IMAGE;
