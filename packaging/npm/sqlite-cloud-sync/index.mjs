import cloudSync from './index.cjs';

export const { getLoadablePath, load } = cloudSync;
