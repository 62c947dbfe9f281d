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
    // tap runs subtests it is handed, awaited or not. Tests read the untyped JSON bodies
    // of the real servers they exercise (admin envelopes, dashboards, IdP answers) and
    // assert on their shape: that is what the assertions check, not the types.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Test helpers hand out objects of closures (clocks, browsers, stacks) that tests destructure.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
