// Lint gate run by CI: typescript-eslint's type-checked recommended rules over src and test.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['bench/**', 'demo/**', 'scripts/**', 'bin/**', 'eslint.config.js', 'dist/**', 'node_modules/**', 'data/**', 'tmp/**', '.tap/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    rules: {
      // Matching control characters is what the hostile-input checks are for.
      'no-control-regex': 'off',
      // Methods that implement Promise-returning interfaces stay async without awaiting:
      // a throw inside them must become a rejection, never a synchronous exception.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // tap runs subtests it is handed, awaited or not; test callbacks are async by convention.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/require-await': 'off' },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
